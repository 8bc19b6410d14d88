"""The latency timer: warm-up, then repeated timed calls; robust statistics (median, p10, p90, mean)."""

from __future__ import annotations

import logging
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["BUSY_SPREAD", "LatencyStats", "sample_call", "summarize", "time_call", "time_forward", "time_interleaved",
           "time_pairs", "time_ratios"]

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


def time_interleaved(runners: Sequence[Callable[[], object]], rounds: int = 10, warmup: int = 5, runs: int = 40,
                     cv_limit: float | None = None, retries: int = 0, seed: int = 0,
                     label: str = "timing") -> list[dict[str, Any]]:  # fmt: skip
    """Time several callables against each other in interleaved rounds.

    Each round visits every runner once, in a fresh random order, with ``warmup`` untimed and ``runs`` timed
    calls. Slow drift of a shared machine (other work, clock changes) then falls on every runner alike instead of
    on whichever was timed during it, so ratios between runners stay fair. With ``cv_limit``, a runner whose
    round medians vary more than that (coefficient of variation) gets ``rounds`` more rounds, up to ``retries``
    times.

    Returns:
        Per runner: ``ms`` (median of all timed calls), ``cv`` (of the calls), ``round_cv`` (of the round
        medians), ``round_ms`` (the median of each of its rounds, in round order: the first ``rounds`` are
        shared by all runners, so runner i's and j's k-th round medians form a pair) and ``runs``.
    """
    from starquad.runtime import progress

    rng = random.Random(seed)
    samples: list[list[float]] = [[] for _ in runners]
    medians: list[list[float]] = [[] for _ in runners]

    def one_pass(items: list[int], tag: str) -> None:
        for _ in progress(range(rounds), tag, rounds):
            rng.shuffle(items)
            for i in items:
                times = sample_call(runners[i], warmup, runs)
                samples[i] += times
                medians[i].append(statistics.median(times))

    def round_cv(i: int) -> float:
        m = medians[i]
        return statistics.stdev(m) / statistics.fmean(m) if len(m) > 1 else 0.0

    one_pass(list(range(len(runners))), f"{label}: time")
    for attempt in range(retries if cv_limit is not None else 0):
        noisy = [i for i in range(len(runners)) if round_cv(i) > cv_limit]
        if not noisy:
            break
        _LOG.info(f"{label}: {len(noisy)} of {len(runners)} above the round-to-round CV limit {cv_limit}; "
                  f"{rounds} more rounds for them")  # fmt: skip
        one_pass(noisy, f"{label}: re-time {attempt + 1}")
    out, busy = [], 0
    for i in range(len(runners)):
        stats = summarize(samples[i], warn_busy=False)
        busy += stats.spread > BUSY_SPREAD
        out.append({"ms": stats.median_ms, "cv": stats.cv, "round_cv": round_cv(i), "round_ms": medians[i],
                    "runs": stats.runs})  # fmt: skip
    if busy:
        _LOG.warning(f"{label}: {busy} of {len(runners)} items had p90/p10 above {BUSY_SPREAD} — the machine looks "
                     "busy; the interleaved rounds spread that over all items, but re-run when it is idle")  # fmt: skip
    return out


def time_ratios(pairs: Sequence[tuple[Callable[[], object], Callable[[], object]]], rounds: int = 10,
                warmup: int = 5, runs: int = 20, seed: int = 0,
                label: str = "timing") -> list[dict[str, Any]]:  # fmt: skip
    """Each pair ``(a, b)`` timed in the interleaved rounds of :func:`time_interleaved` (blocks of calls per runner,
    all runners in each round): per pair ``a_ms``, ``b_ms`` (medians of all calls) and ``ratio``, the median of the
    rounds' ``b / a``. Blocks, where :func:`time_pairs` alternates call by call: ONNX Runtime's intra-op threads spin
    after a call, so two sessions alternating call by call each run beside the other's spinning threads and with
    its caches (StarNet-S4 55 ms that way, 18 ms in blocks, on a 2-core AMD EPYC)."""
    flat = [fn for pair in pairs for fn in pair]
    timed = time_interleaved(flat, rounds=rounds, warmup=warmup, runs=runs, seed=seed, label=label)
    out = []
    for a, b in zip(timed[0::2], timed[1::2], strict=True):
        ratio = statistics.median(y / x for x, y in zip(a["round_ms"], b["round_ms"], strict=True))
        out.append({"a_ms": a["ms"], "b_ms": b["ms"], "ratio": ratio})
    return out


def time_pairs(pairs: Sequence[tuple[Callable[[], object], Callable[[], object]]], rounds: int = 30, warmup: int = 2,
               runs: int = 5, seed: int = 0, label: str = "timing") -> list[dict[str, Any]]:  # fmt: skip
    """Time each pair ``(a, b)`` of callables against each other, visit by visit.

    Each round visits every pair once, in a fresh random order; a visit times one side and then the other (which
    goes first is drawn per visit), each as ``warmup`` untimed calls followed by ``runs`` timed calls. A visit's
    two medians lie a fraction of a second apart, so the load of a shared machine falls on both alike and their
    difference is a paired sample: where :func:`time_interleaved` pairs rounds that visit every runner in between
    (seconds apart on a busy 2-core host), these pairs agree to a fraction of that. Blocks per side, not
    alternating calls: ONNX Runtime's intra-op threads spin after a call, so two sessions alternating call by call
    each ran beside the other's spinning threads and with its caches (StarNet-S4 in ONNX Runtime 55 ms that way,
    18 ms in blocks, on a 2-core AMD EPYC).

    Returns:
        Per pair: ``a_ms``, ``b_ms`` (medians of all timed calls) and ``a_round_ms``, ``b_round_ms`` (each visit's
        medians, in round order: the k-th of each form a pair).
    """
    from starquad.runtime import progress

    if rounds < 2 or runs < 1 or warmup < 0:
        raise ValueError(f"need rounds >= 2, runs >= 1 and warmup >= 0, got {rounds}, {runs}, {warmup}")
    rng = random.Random(seed)
    calls: list[tuple[list[float], list[float]]] = [([], []) for _ in pairs]
    medians: list[tuple[list[float], list[float]]] = [([], []) for _ in pairs]
    order = list(range(len(pairs)))
    for _ in progress(range(rounds), f"{label}: time", rounds):
        rng.shuffle(order)
        for i in order:
            for side in ((0, 1) if rng.random() < 0.5 else (1, 0)):
                times = sample_call(pairs[i][side], warmup, runs)
                calls[i][side].extend(times)
                medians[i][side].append(statistics.median(times))
    return [{"a_ms": statistics.median(c[0]), "b_ms": statistics.median(c[1]), "a_round_ms": m[0],
             "b_round_ms": m[1]} for c, m in zip(calls, medians, strict=True)]  # fmt: skip


@torch.inference_mode()
def time_forward(model: torch.nn.Module, x: torch.Tensor, warmup: int = 10, runs: int = 50) -> LatencyStats:
    """Inference latency of ``model(x)`` in eval mode (threads: the caller's; see ``runtime.torch_threads``)."""
    model.eval()
    return time_call(lambda: model(x), warmup=warmup, runs=runs)
