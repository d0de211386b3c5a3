"""Named crash points for the reliability suite: ``SUANLI_CRASH_AT=<point>[,<point>…]``.

Why in the operator at all: the claims that matter most — nothing lost, duplicated or billed
twice when the operator dies at any moment — can only be shown by killing the real process at
the moments in between its writes. Each point names such a moment on the admit → apply →
lifecycle → metering → status path. With the variable unset (production), ``crash_point`` is a
function that does nothing, decided once at import; with it set, the process SIGKILLs itself —
no cleanup, no finally blocks, exactly like an OOM kill or a node loss — the
``SUANLI_CRASH_AFTER``-th time (default 1) it reaches a named point.
"""

from __future__ import annotations

import os
import signal
import sys

POINTS = (
    "cycle-start",
    "after-admission-status",
    "after-rank-table",
    "after-service",
    "between-pod-creations",
    "after-pods",
    "before-rollback-deletes",
    "after-rollback-deletes",
    "after-retire",
    "after-lifecycle-status",
    "after-bill",
    "between-finalizer-releases",
    "between-quota-statuses",
    "after-quota-statuses",
)

_ARMED = frozenset(p for p in os.environ.get("SUANLI_CRASH_AT", "").split(",") if p)
_AFTER = int(os.environ.get("SUANLI_CRASH_AFTER", "1") or 1)
_seen: dict[str, int] = {}

unknown = sorted(_ARMED - set(POINTS))
if unknown:
    raise SystemExit(f"SUANLI_CRASH_AT names unknown crash points {unknown}; known: {POINTS}")


def _crash(point: str) -> None:
    if point not in _ARMED:
        return
    _seen[point] = _seen.get(point, 0) + 1
    if _seen[point] >= _AFTER:
        print(f"suanli: crash point {point} reached: SIGKILL", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def _nothing(point: str) -> None:
    """Production: crash points cost one call to an empty function."""


crash_point = _crash if _ARMED else _nothing
