"""Status conditions as the Kubernetes API conventions describe them.

``lastTransitionTime`` changes only when ``status`` flips, so rewriting the same decision every
cycle leaves the object untouched and the writer can skip the API call entirely.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def epoch_seconds(stamp: str | None) -> float | None:
    """An RFC 3339 time as the API server writes it ("2026-01-01T00:00:00Z"), in Unix seconds."""
    if not stamp:
        return None
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    *,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """Return a new list where the condition of ``type_`` says what is given."""
    wanted = "True" if status else "False"
    result: list[dict[str, Any]] = []
    found = False
    for existing in conditions:
        if existing.get("type") != type_:
            result.append(dict(existing))
            continue
        found = True
        transition = existing.get("lastTransitionTime") if existing.get("status") == wanted else now
        result.append(_condition(type_, wanted, reason, message, generation, transition or now))
    if not found:
        result.append(_condition(type_, wanted, reason, message, generation, now))
    return result


def _condition(
    type_: str, status: str, reason: str, message: str, generation: int | None, when: str
) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": when,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return condition


def same_ignoring_time(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    def strip(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return sorted(
            ({k: v for k, v in c.items() if k != "lastTransitionTime"} for c in items),
            key=lambda c: str(c.get("type")),
        )

    return strip(a) == strip(b)
