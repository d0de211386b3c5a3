"""PNG plots of the job-level replay (matplotlib, no display needed).

Why a module: the replay's table says who wins; the plots show when and why (utilisation and
fragmentation over time, the wait distribution), so people can check the story themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from suanli.sim.jobreplay import ReplayResult


def _hours(values: Sequence[float]) -> list[float]:
    return [v / 3600.0 for v in values]


def plot_replay(results: Sequence[ReplayResult], out_dir: Path, prefix: str = "jobs") -> list[Path]:
    """Write ``<prefix>-timeline.png`` and ``<prefix>-waits.png``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    for result in results:
        hours = _hours(result.times)
        top.step(hours, [100 * u for u in result.utilisation], where="post", label=result.scheduler)
        bottom.step(
            hours, [100 * f for f in result.fragmentation], where="post", label=result.scheduler
        )
    start, end = results[0].arrival_window
    for axis in (top, bottom):
        axis.axvspan(start / 3600, end / 3600, color="0.93", zorder=0)
        axis.grid(alpha=0.3)
    top.set_ylabel("GPU allocated (%)")
    bottom.set_ylabel("free GPU fragmented (%)")
    bottom.set_xlabel("hours (shaded: arrivals)")
    top.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path = out_dir / f"{prefix}-timeline.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    written.append(path)

    figure, axis = plt.subplots(figsize=(8, 3.5))
    for result in results:
        waits = sorted(w / 3600.0 for w in result.waits())
        if waits:
            shares = [(i + 1) / len(waits) for i in range(len(waits))]
            axis.step(waits, shares, where="post", label=result.scheduler)
    axis.set_xscale("symlog", linthresh=0.1)
    axis.set_xlabel("queue wait (hours, log beyond 0.1)")
    axis.set_ylabel("share of jobs")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path = out_dir / f"{prefix}-waits.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    written.append(path)
    return written
