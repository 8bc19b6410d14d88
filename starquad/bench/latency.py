"""The latency timer: warm-up, then repeated timed calls; robust statistics (median, p10, p90, mean)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["LatencyStats", "time_call", "time_forward"]


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per call."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    runs: int


def time_call(fn: Callable[[], object], warmup: int = 10, runs: int = 50) -> LatencyStats:
    """Time ``fn()``: ``warmup`` untimed calls, then ``runs`` timed ones (wall clock, perf_counter)."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    q = statistics.quantiles(times, n=10, method="inclusive") if runs > 1 else [times[0]] * 9
    return LatencyStats(statistics.median(times), q[0], q[-1], statistics.fmean(times), runs)


@torch.inference_mode()
def time_forward(model: torch.nn.Module, x: torch.Tensor, warmup: int = 10, runs: int = 50) -> LatencyStats:
    """Inference latency of ``model(x)`` in eval mode (the caller sets threads: ``torch.set_num_threads``)."""
    model.eval()
    return time_call(lambda: model(x), warmup=warmup, runs=runs)
