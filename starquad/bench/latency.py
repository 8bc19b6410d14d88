"""The latency timer: warm-up, then repeated timed calls; robust statistics (median, p10, p90, mean)."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["BUSY_SPREAD", "LatencyStats", "sample_call", "summarize", "time_call", "time_forward"]

_LOG = logging.getLogger(__name__)

# p90 / p10 above this says the timings disagree with themselves: other work shared the cores during the runs
# (the case reported in issue #15: p10 1.2 ms against a mean of 5.3 ms for one model, unflagged).
BUSY_SPREAD = 1.5


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per call."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    runs: int
    cv: float = 0.0  # coefficient of variation: standard deviation / mean of the timed runs

    @property
    def spread(self) -> float:
        """p90 / p10: 1.0 for perfectly steady timings."""
        return self.p90_ms / self.p10_ms if self.p10_ms > 0 else float("inf")


def sample_call(fn: Callable[[], object], warmup: int = 10, runs: int = 50) -> list[float]:
    """``warmup`` untimed calls of ``fn()``, then the milliseconds of ``runs`` timed ones (wall clock)."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def summarize(times: list[float], label: str = "", warn_busy: bool = True) -> LatencyStats:
    """Robust statistics of timings in ms; with ``warn_busy``, logs a warning when their own spread
    (p90 / p10 > :data:`BUSY_SPREAD`) says the machine was busy."""
    runs = len(times)
    q = statistics.quantiles(times, n=10, method="inclusive") if runs > 1 else [times[0]] * 9
    mean = statistics.fmean(times)
    cv = statistics.stdev(times) / mean if runs > 1 and mean > 0 else 0.0
    stats = LatencyStats(statistics.median(times), q[0], q[-1], mean, runs, cv)
    if warn_busy and runs >= 10 and stats.spread > BUSY_SPREAD:
        _LOG.warning(f"{label or 'timing'}: p10 {stats.p10_ms:.3g} ms vs p90 {stats.p90_ms:.3g} ms (mean "
                     f"{stats.mean_ms:.3g}): a spread of {stats.spread:.1f}× — the machine looks busy; compare only "
                     "ratios from one run, or re-run when it is idle")  # fmt: skip
    return stats


def time_call(fn: Callable[[], object], warmup: int = 10, runs: int = 50, label: str = "") -> LatencyStats:
    """Time ``fn()``: ``warmup`` untimed calls, then ``runs`` timed ones; :func:`summarize` of them."""
    return summarize(sample_call(fn, warmup, runs), label)


@torch.inference_mode()
def time_forward(model: torch.nn.Module, x: torch.Tensor, warmup: int = 10, runs: int = 50) -> LatencyStats:
    """Inference latency of ``model(x)`` in eval mode (threads: the caller's; see ``runtime.torch_threads``)."""
    model.eval()
    return time_call(lambda: model(x), warmup=warmup, runs=runs)
