"""The report's trainings side by side: K local worker processes, or the CPUs of a Ray cluster.

The report first asks every seeded section which trainings it needs (a collect pass, nothing trains), then
trains those here, then runs the sections, which read every result back. A training's numbers depend only on
its recipe — seed and thread count included (``ctx.run_threads``) — never on how many run beside it or where, so
sequential, ``--workers K`` and ``--ray`` give the same report. Each result is kept atomically when its training
ends; a worker that dies loses only its own training, and the same command started again continues.

:func:`calibrate` chooses K on the machine in hand (``Calibration.best_workers``): it times short trainings
alone and K at once, for K from 1 to ``cores // run_threads``, and takes the K that finishes the most runs per
hour (small networks scale poorly across threads, so two one-thread trainings side by side often beat one after
another).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import multiprocessing
import os
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from starquad.analysis.fmnist import RunRequest, train_request
from starquad.errors import ConfigError, StarquadError
from starquad.extras import require

__all__ = ["Calibration", "calibrate", "check_workers", "describe", "estimate_seconds", "train_all"]

_LOG = logging.getLogger(__name__)


def _unique(requests: Sequence[RunRequest]) -> list[RunRequest]:
    """One request per kept run; where several sections ask for it, the one that keeps the weights."""
    out: dict[Any, RunRequest] = {}
    for r in requests:
        if r.kept not in out or r.weights is not None:
            out[r.kept] = r
    return list(out.values())


def check_workers(workers: int) -> None:
    """A ConfigError unless ``workers`` is a whole number >= 1."""
    if not (isinstance(workers, int) and workers >= 1):
        raise ConfigError(f"--workers must be a whole number >= 1, got {workers!r}")


def _log_done(log: Callable[[str], None], done: int, total: int, request: RunRequest, result: dict[str, Any]) -> None:
    log(f"  [{done}/{total}] {request.label}: top-1 {result['top1']:.2f}% in {result['seconds']:.0f} s")


def train_all(requests: Sequence[RunRequest], workers: int = 1, ray_address: str | None = None,
              log: Callable[[str], None] | None = None) -> None:  # fmt: skip
    """Train ``requests`` (duplicates once), ``workers`` at a time locally, or on the Ray cluster at ``ray_address``
    (``'local'``: start one on this machine with ``workers`` CPUs). Each result is kept as its training ends.

    Raises:
        ConfigError: ``workers`` < 1, or no Ray cluster at ``ray_address``.
        StarquadError: a worker died (what finished is kept; the same command continues).
    """
    log = log or _LOG.info
    check_workers(workers)
    todo = _unique(requests)
    if not todo:
        return
    log(f"[reproduce] training {len(todo)} runs, {todo[0].cfg.threads} thread(s) each, "
        f"{'on Ray (' + ray_address + ')' if ray_address else f'{workers} at a time'}")  # fmt: skip
    if ray_address is not None:
        _train_on_ray(todo, workers, ray_address, log)
    elif workers == 1:
        for request in todo:
            train_request(request)
    else:
        _train_in_processes(todo, workers, log)


def _train_in_processes(todo: list[RunRequest], workers: int, log: Callable[[str], None]) -> None:
    # spawn, not fork: the parent's torch thread pools and OpenMP state do not survive a fork
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(train_request, r): r for r in todo}
            for done, future in enumerate(as_completed(futures), 1):
                _log_done(log, done, len(todo), futures[future], future.result())
    except BrokenProcessPool as e:
        raise StarquadError("a training worker died (killed, or out of memory); the runs that finished are kept — "
                            "run the same command again to continue") from e  # fmt: skip


def _train_on_ray(todo: list[RunRequest], workers: int, address: str, log: Callable[[str], None]) -> None:
    ray = require("ray", "--ray")
    started = not ray.is_initialized()
    if started:
        try:
            if address == "local":
                ray.init(num_cpus=workers * todo[0].cfg.threads, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)  # fmt: skip
            else:
                _reachable(address)
                ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError(f"no Ray cluster at {address!r} ({why}); start one with 'ray start --head' or pass "
                              "--ray local") from None  # fmt: skip
    try:
        remote = ray.remote(num_cpus=todo[0].cfg.threads)(train_request)
        refs = {remote.remote(r): r for r in todo}
        pending, done = list(refs), 0
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            done += 1
            _log_done(log, done, len(todo), refs[ready[0]], ray.get(ready[0]))
    finally:
        if started:
            ray.shutdown()


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a ``host:port`` nobody answers at (Ray itself retries for minutes before it gives up)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # 'auto' and other forms: Ray resolves them
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {host}:{port} ({e.strerror or type(e).__name__})") from None


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Seconds of the lightest network's calibration training alone; runs per hour with ``k`` of them at once for
    each ``k`` tried; ``(MACs, seconds per image)`` of the lightest and heaviest pending networks."""

    seconds_alone: float
    runs_per_hour: dict[int, float]
    per_image: tuple[tuple[float, float], ...]

    @property
    def best_workers(self) -> int:
        return max(self.runs_per_hour, key=lambda k: (round(self.runs_per_hour[k], 6), -k))

    def seconds_per_image(self, macs: float) -> float:
        """On the line through the calibrated networks (constant with one), never below the lightest's."""
        (m0, s0), (m1, s1) = self.per_image[0], self.per_image[-1]
        slope = (s1 - s0) / (m1 - m0) if m1 > m0 else 0.0
        return max(s0 + slope * (macs - m0), min(s0, s1))


def _calibration_job(request: RunRequest) -> float:
    start = time.perf_counter()
    train_request(request)
    return time.perf_counter() - start


# The calibration trainings: a pending run's recipe on this many images, one epoch, evaluated on as many.
CALIBRATION_IMAGES = 1000
# Timings of k trainings at once, each k in turn, repeated this many times; the median wall of each k counts. One
# sub-second timing per k is at the mercy of a shared host: on a 2-core AMD EPYC one quick report measured 2 at
# once at 1.09× the rate of one (its estimate came out twice the time the trainings took), where three
# calibrations in a row of the same host measured 1.65×, 1.97× and 2.39×.
CALIBRATION_REPEATS = 3


@functools.cache
def _macs(model: str, kwargs: str, img_size: int) -> float:
    from starquad.bench.flops import count_flops
    from starquad.models import create_model

    return max(count_flops(create_model(model, num_classes=10, in_chans=1, **json.loads(kwargs)),
                           (1, img_size, img_size)).macs, 1.0)  # fmt: skip


def _macs_of(cfg: Any) -> float:
    return _macs(cfg.model, json.dumps(cfg.model_kwargs, sort_keys=True), cfg.img_size)


def _images(cfg: Any) -> float:
    """Images a training processes, an evaluated image counted as a third of a trained one (forward only)."""
    evals = (cfg.eval_subset or 10_000) * (cfg.epochs // cfg.eval_interval if cfg.eval_interval else 1)
    return cfg.epochs * cfg.subset + evals / 3


def _calibration(request: RunRequest) -> RunRequest:
    images = min(CALIBRATION_IMAGES, request.cfg.subset or CALIBRATION_IMAGES)
    cfg = dataclasses.replace(request.cfg, subset=images, eval_subset=images, epochs=1)
    return dataclasses.replace(request, cfg=cfg, label=f"calibration ({request.label})")


def estimate_seconds(requests: Sequence[RunRequest], calibration: Calibration) -> float:
    """Wall seconds to train ``requests`` at the calibration's best number at once: each run's images times the
    seconds per image of a network of its MACs (the line through the calibration's two networks)."""
    k = calibration.best_workers
    speedup = calibration.runs_per_hour[k] / calibration.runs_per_hour[1]
    return sum(_images(r.cfg) * calibration.seconds_per_image(_macs_of(r.cfg)) for r in _unique(requests)) / speedup


def _time_copies(pool: ProcessPoolExecutor, request: RunRequest, k: int, tag: str) -> float:
    copies = [dataclasses.replace(request, kept=request.kept.with_name(f"calib-{tag}-{k}-{i}.json")) for i in range(k)]
    # before the clock: a one-batch training in each of k workers at once (every import, the data, the extension
    # loaded; a cold first training measured 10× a warm one)
    warm = dataclasses.replace(request.cfg, subset=request.cfg.batch_size, eval_subset=request.cfg.batch_size)
    list(pool.map(_warm_up, [dataclasses.replace(c, cfg=warm, kept=c.kept.with_suffix(".warm")) for c in copies]))
    start = time.perf_counter()
    list(pool.map(_calibration_job, copies))
    wall = time.perf_counter() - start
    for c in copies:
        c.kept.unlink(missing_ok=True)
    return wall


def calibrate(requests: Sequence[RunRequest], run_threads: int, cores: int | None = None) -> Calibration:
    """Time short trainings of the lightest and the heaviest pending network (by MACs) alone, and ``k`` copies of
    the lightest at once for ``k`` up to ``cores // run_threads`` (:data:`CALIBRATION_REPEATS` times each, the
    median counts); each in worker processes started before the clock starts."""
    todo = _unique(requests)
    light = _calibration(min(todo, key=lambda r: _macs_of(r.cfg)))
    heavy = _calibration(max(todo, key=lambda r: _macs_of(r.cfg)))
    cores = cores or os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")
    ks = range(1, max(1, cores // run_threads) + 1)
    pools = {k: ProcessPoolExecutor(max_workers=k, mp_context=context) for k in ks}
    walls: dict[int, list[float]] = {k: [] for k in ks}
    try:
        for _ in range(CALIBRATION_REPEATS):  # each k in turn, so drift of the host's load falls on all alike
            for k in ks:
                walls[k].append(_time_copies(pools[k], light, k, "light"))
    finally:
        for pool in pools.values():
            pool.shutdown()
    rates = {k: 3600.0 * k / statistics.median(walls[k]) for k in ks}
    points = [(_macs_of(light.cfg), 3600.0 / rates[1] / _images(light.cfg))]
    if heavy.kept != light.kept:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            points.append((_macs_of(heavy.cfg), _time_copies(pool, heavy, 1, "heavy") / _images(heavy.cfg)))
    return Calibration(3600.0 / rates[1], rates, tuple(points))


def _warm_up(request: RunRequest) -> None:
    train_request(request)
    request.kept.unlink(missing_ok=True)
    time.sleep(0.5)  # long enough that each of the k tasks lands on its own worker


def describe(calibration: Calibration) -> dict[str, Any]:
    return {"seconds_alone": round(calibration.seconds_alone, 2),
            "runs_per_hour": {k: round(v, 1) for k, v in calibration.runs_per_hour.items()},
            "workers": calibration.best_workers,
            "seconds_per_image": [[m, round(s, 7)] for m, s in calibration.per_image]}  # fmt: skip
