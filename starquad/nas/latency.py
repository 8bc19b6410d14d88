"""A latency model of *this* machine: a table of op timings, a fitted correction, and its validation.

* **Table.** Every distinct (candidate op, input shape) a space can produce, plus the fixed parts (stem, the
  stage downsamplers, the head), is timed alone in the chosen runtime, prepared and exported as
  ``starquad export`` does, through ``bench``'s runners and timer (:func:`~starquad.bench.backends.make_runner`,
  :func:`~starquad.bench.latency.sample_call`).
* **Protocol** (:class:`Protocol`). Everything timed together (entries and fitting networks; or the
  validation networks) is timed in ``rounds`` interleaved rounds, each visiting every item in a fresh random
  order for ``warmup`` untimed and ``runs`` timed calls, so slow drifts of a shared machine fall on all items
  alike instead of on whichever was timed during them. An item's latency is the median of all its timed calls;
  an item whose round medians disagree (their CV above ``cv_limit``) gets ``rounds`` more, up to ``retries``
  times. The exports, the slow part, run in parallel worker processes before any timing starts.
* **Predictor.** ``T(arch) = overhead + scale · Σ entries + per_op · ops``: the sum of the table entries,
  corrected by three numbers fitted (least squares) on whole-network timings of random architectures — what
  does not add up: the network's own call overhead, the call overhead each separately timed entry carried
  (``ops`` = the layers that are not skips), and fusion across op boundaries. An op the table lacks raises an
  error naming it, never a silent zero (a skip is an explicit 0 entry).
* **Fingerprint.** CPU model, core count, threads, runtime and library versions. A table measured elsewhere
  is refused with how to rebuild it: latency is a property of the machine, not of the network.

Stored as JSON, never pickled.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starquad.errors import ConfigError, StarquadError
from starquad.extras import require
from starquad.nas.space import SearchSpace, build, from_record, layer_ops, random_arch
from starquad.runtime import cpu_model

__all__ = ["LatencyTable", "Protocol", "UnknownOpError", "build_table", "default_table_path", "fingerprint",
           "latency_percentiles", "measure_arch", "measure_archs", "validate_table", "validation_archs"]  # fmt: skip

_LOG = logging.getLogger(__name__)
FORMAT_VERSION = 1


class UnknownOpError(StarquadError, KeyError):
    """An architecture uses an op (or shape) the latency table has no entry for."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Protocol:
    """How entries and networks are timed.

    ONNX Runtime with 1 intra-op thread by default: on this 2-core machine its timings varied by ≈2% (CV)
    against ≈9% with 2 threads (SPEC §5), and a latency model is only as good as the noise of what it is
    fitted on.
    """

    runtime: str = "onnxruntime"
    threads: int = 1
    img_size: int = 28
    in_chans: int = 1
    warmup: int = 5  # untimed calls before each round's timed ones
    runs: int = 40  # timed calls per item per round
    rounds: int = 10  # interleaved rounds over everything timed together
    cv_limit: float = 0.02  # an item whose round medians vary more (CV) gets `rounds` more …
    retries: int = 2  # … up to this many times


def fingerprint(protocol: Protocol) -> dict[str, Any]:
    """What a table's timings depend on besides the network."""
    import torch

    onnxruntime = require("onnxruntime", "a latency table (timed in ONNX Runtime)")

    from starquad.deploy.fold import INFERENCE_FORM

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": protocol.threads, "runtime": protocol.runtime,
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "inference_form": INFERENCE_FORM}  # fmt: skip


def default_table_path(space: str, protocol: Protocol) -> Path:
    """Where a table of ``space`` under ``protocol`` is cached for this machine: ``latency/`` in starquad's cache
    folder (:func:`starquad.io.cache_dir`), named by space, runtime, threads, input and a hash of the
    fingerprint, so another machine, runtime version or setup never finds this one's table."""
    import hashlib

    from starquad.io import cache_dir

    digest = hashlib.sha256(json.dumps(fingerprint(protocol), sort_keys=True).encode()).hexdigest()[:10]
    return cache_dir("latency") / (f"{space}-{protocol.runtime}-t{protocol.threads}-{protocol.in_chans}x"
                                   f"{protocol.img_size}px-{digest}.json")  # fmt: skip


def _key(op: str, shape: Sequence[int]) -> str:
    return f"{op}@{'x'.join(map(str, shape))}"


def _fixed_keys(space: SearchSpace, protocol: Protocol) -> list[str]:
    """Keys of the parts every architecture has: the stem, the stage downsamplers and the head."""
    size = protocol.img_size // space.stem_stride
    keys = [_key("stem", (protocol.in_chans, protocol.img_size, protocol.img_size))]
    for i in range(1, len(space.widths)):
        keys.append(_key(f"down{i}", (space.widths[i - 1], size, size)))
        size //= 2
    return [*keys, _key("head", (space.widths[-1], size, size))]


@dataclass
class LatencyTable:
    """Op timings (ms) of one space on one machine, and the fitted correction."""

    space: dict[str, Any]
    protocol: Protocol
    fingerprint: dict[str, Any]
    entries: dict[str, dict[str, float]] = field(default_factory=dict)  # key -> {"ms", "cv", "runs"}
    overhead_ms: float = 0.0
    scale: float = 1.0
    per_op_ms: float = 0.0
    fit: dict[str, Any] = field(default_factory=dict)

    # --- prediction -------------------------------------------------------------------------------------

    def fixed_keys(self, space: SearchSpace) -> list[str]:
        return _fixed_keys(space, self.protocol)

    def op_keys(self, space: SearchSpace, arch: Sequence[int]) -> list[str]:
        """The entries an architecture's latency is the sum of (fixed parts first)."""
        ops = layer_ops(space, arch, self.protocol.img_size)
        return self.fixed_keys(space) + [_key(op.op, op.input_shape) for op in ops]

    def entry(self, key: str) -> float:
        if key not in self.entries:
            raise UnknownOpError(
                f"the latency table has no entry for '{key}' (space {self.space['name']}, "
                f"{self.protocol.img_size}² input); rebuild it for this space and size"
            )
        return self.entries[key]["ms"]

    def naive_ms(self, space: SearchSpace, arch: Sequence[int]) -> float:
        """The plain sum of the entries (ProxylessNAS's lookup table)."""
        return sum(self.entry(k) for k in self.op_keys(space, arch))

    def features(self, space: SearchSpace, arch: Sequence[int]) -> tuple[float, int]:
        """What the correction is a function of: the plain sum, and the number of layers that are not skips."""
        return self.naive_ms(space, arch), sum(space.candidates[i].kind != "skip" for i in space.check(arch))

    def predict_ms(self, space: SearchSpace, arch: Sequence[int]) -> float:
        """The corrected prediction ``overhead + scale · sum + per_op · ops``."""
        total, ops = self.features(space, arch)
        return self.overhead_ms + self.scale * total + self.per_op_ms * ops

    def layer_costs(self, space: SearchSpace) -> tuple[float, list[list[float]]]:
        """The prediction as ``const + Σ_layers cost[layer][choice]``, the form the search's expected latency and
        the derivation's knapsack use: ``const`` = overhead + scale · the fixed parts, ``cost`` = scale · the
        entry + per_op for an op that is not a skip."""
        const = self.overhead_ms + self.scale * sum(self.entry(k) for k in self.fixed_keys(space))
        shapes = [op.input_shape for op in layer_ops(space, [0] * space.num_layers, self.protocol.img_size)]
        costs = [[self.scale * self.entry(_key(c.name, shape)) + self.per_op_ms * (c.kind != "skip")
                  for c in space.candidates] for shape in shapes]  # fmt: skip
        return const, costs

    def set_correction(self, other: LatencyTable) -> None:
        """Use ``other``'s fitted correction (the out-of-distribution check: fit on one space, use on another)."""
        self.overhead_ms, self.scale, self.per_op_ms = other.overhead_ms, other.scale, other.per_op_ms

    # --- storage ----------------------------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT_VERSION, **asdict(self)}, indent=1) + "\n"

    def save(self, path: str | os.PathLike) -> Path:
        from starquad.io import atomic_write

        return atomic_write(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike, check_machine: bool = True) -> LatencyTable:
        """Read a table; with ``check_machine``, refuse one whose fingerprint is not this machine's."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            if data.pop("format", None) != FORMAT_VERSION:
                raise ValueError(f"unknown format (expected {FORMAT_VERSION})")
            table = cls(**{**data, "protocol": Protocol(**data["protocol"])})
        except FileNotFoundError:
            raise ConfigError(f"{path}: latency table not found; build one with 'starquad nas latency build'") from None
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not a starquad latency table ({type(e).__name__}: {e})") from None
        if check_machine:
            here = fingerprint(table.protocol)
            diff = [f"{k}: table {table.fingerprint.get(k)!r}, here {v!r}" for k, v in here.items()
                    if table.fingerprint.get(k) != v]  # fmt: skip
            if diff:
                raise ConfigError(f"{path} was measured on another machine or setup ({'; '.join(diff)}); rebuild it "
                                  f"here: starquad nas latency build --space {table.space['name']} --threads "
                                  f"{table.protocol.threads} --img-size {table.protocol.img_size}")  # fmt: skip
        return table

    def space_obj(self) -> SearchSpace:
        return from_record(self.space["name"], self.space)


# --- measuring -------------------------------------------------------------------------------------------


def _parse_key(key: str) -> tuple[str, tuple[int, ...]]:
    op, shape = key.split("@")
    return op, tuple(int(v) for v in shape.split("x"))


def _fixed_modules(space: SearchSpace, protocol: Protocol) -> dict[str, Any]:
    """The stem, downsamplers and head of the space's skeleton, by table key."""
    import torch.nn as nn

    model = build(space, [0] * space.num_layers, num_classes=10, in_chans=protocol.in_chans)

    class Head(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m.forward_head(x)

    keys = _fixed_keys(space, protocol)
    parts = [model.stem, *(model.stages[i].downsample for i in range(1, len(space.widths))), Head(model)]
    return dict(zip(keys, parts, strict=True))


# A job is what to time: ("arch", architecture) — a whole network — or ("entry", table key) — one op alone.
Job = tuple[str, Any]


def _job_shape(job: Job, protocol: Protocol) -> tuple[int, ...]:
    """A job's input shape (batch 1 left out)."""
    kind, what = job
    return (protocol.in_chans, protocol.img_size, protocol.img_size) if kind == "arch" else _parse_key(what)[1]


def _job_module(space: SearchSpace, job: Job, protocol: Protocol):
    """The module a job times."""
    kind, what = job
    if kind == "arch":
        return build(space, list(what), num_classes=10, in_chans=protocol.in_chans)
    fixed = _fixed_modules(space, protocol)
    if what in fixed:
        return fixed[what]
    op, shape = _parse_key(what)
    (cand,) = [c for c in space.candidates if c.name == op]
    return cand.build(shape[0])


def _input(shape: Sequence[int]):
    import torch

    return torch.randn(1, *shape, generator=torch.Generator().manual_seed(0))


def _deployable(space: SearchSpace, job: Job, protocol: Protocol):
    """A job's model in the form its runtime runs (the ONNX export for ONNX runtimes); a worker's task."""
    from starquad.bench.backends import deployable

    return deployable(_job_module(space, job, protocol).eval(), protocol.runtime, _input(_job_shape(job, protocol)))


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _deployables(space: SearchSpace, jobs: Sequence[Job], protocol: Protocol, label: str) -> list[Any]:
    """Every job's deployable, exported in parallel worker processes (one per core, one thread each) when the
    runtime runs ONNX files — exports take seconds, the timings of a small network milliseconds."""
    from starquad.bench.backends import get_backend
    from starquad.runtime import progress

    tasks = [(space, job, protocol) for job in jobs]
    workers = min(os.cpu_count() or 1, len(tasks))
    if not get_backend(protocol.runtime).onnx or workers < 2:
        return [_deployable(*t) for t in progress(tasks, f"{label}: prepare", len(tasks))]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: a fresh interpreter, not a fork of one whose torch thread pools are already running
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread) as pool:
        return list(progress(pool.map(_deployable, *zip(*tasks, strict=True)), f"{label}: export", len(tasks)))


def _runners(jobs: Sequence[Job], made: Sequence[Any], protocol: Protocol) -> list[Any]:
    """Ready-to-time runners (fresh sessions) of the jobs' deployables."""
    from starquad.bench.backends import make_runner

    return [make_runner(d, protocol.runtime, _input(_job_shape(j, protocol)), protocol.threads)
            for j, d in zip(jobs, made, strict=True)]  # fmt: skip


def _time_interleaved(runners: Sequence[Any], protocol: Protocol, label: str, seed: int = 0) -> list[dict[str, Any]]:
    """:func:`starquad.bench.latency.time_interleaved` with the protocol's rounds, calls and re-timing rule."""
    from starquad.bench.latency import time_interleaved

    return time_interleaved(runners, rounds=protocol.rounds, warmup=protocol.warmup, runs=protocol.runs,
                            cv_limit=protocol.cv_limit, retries=protocol.retries, seed=seed, label=label)  # fmt: skip


def measure_archs(space: SearchSpace, archs: Sequence[Sequence[int]], protocol: Protocol, times: int = 1,
                  label: str = "networks") -> list[list[float]]:  # fmt: skip
    """Whole-network latencies (median ms) of ``archs``, timed as the table's entries are; with ``times`` > 1,
    that many independent measurements (each with fresh sessions of the same exports: test–retest)."""
    jobs = [("arch", tuple(a)) for a in archs]
    made = _deployables(space, jobs, protocol, label)
    out = []
    for t in range(times):
        runners = _runners(jobs, made, protocol)
        out.append([r["ms"] for r in _time_interleaved(runners, protocol, f"{label} ({t + 1}/{times})", seed=t)])
        del runners
    return out


def measure_arch(space: SearchSpace, arch: Sequence[int], protocol: Protocol) -> float:
    """The measured whole-network latency (median ms) of one architecture."""
    return measure_archs(space, [arch], protocol)[0][0]


def _fit_correction(table: LatencyTable, space: SearchSpace, archs, measured) -> None:
    """Least squares of measured whole networks on [1, sum, ops]: the table's three correction numbers."""
    import numpy as np

    feats = np.array([table.features(space, a) for a in archs], dtype=float)
    design = np.column_stack([np.ones(len(archs)), feats])
    (overhead, scale, per_op), *_ = np.linalg.lstsq(design, np.asarray(measured), rcond=None)
    table.overhead_ms, table.scale, table.per_op_ms = float(overhead), float(scale), float(per_op)


def build_table(space: SearchSpace, protocol: Protocol, fit_archs: int = 60, seed: int = 0,
                log: Callable[[str], None] | None = None) -> LatencyTable:  # fmt: skip
    """Time every entry of ``space`` and fit the correction on ``fit_archs`` random whole networks, all in the
    same interleaved rounds."""
    import numpy as np

    log = log or _LOG.info
    t0 = time.perf_counter()
    table = LatencyTable(space.record(), protocol, fingerprint(protocol))
    keys = list(_fixed_keys(space, protocol))
    size = protocol.img_size // space.stem_stride
    for stage, width in enumerate(space.widths):
        size = size if stage == 0 else size // 2
        for cand in space.candidates:
            key = _key(cand.name, (width, size, size))
            if cand.kind == "skip":
                table.entries[key] = {"ms": 0.0, "cv": 0.0, "round_cv": 0.0, "runs": 0}  # identity: nothing runs
            else:
                keys.append(key)
    rng = random.Random(seed)
    archs = [random_arch(space, rng) for _ in range(fit_archs)]
    jobs = [("entry", k) for k in keys] + [("arch", tuple(a)) for a in archs]
    made = _deployables(space, jobs, protocol, "latency table")
    t_export = time.perf_counter() - t0
    timed = _time_interleaved(_runners(jobs, made, protocol), protocol, "latency table", seed=seed)
    table.entries.update(zip(keys, timed[: len(keys)], strict=True))
    measured = np.array([t["ms"] for t in timed[len(keys) :]])
    _fit_correction(table, space, archs, measured)
    sums = np.array([table.naive_ms(space, a) for a in archs])
    pred = np.array([table.predict_ms(space, a) for a in archs])
    cvs = [e["cv"] for e in timed[: len(keys)]]
    round_cvs = [e["round_cv"] for e in timed]
    table.fit = {"archs": fit_archs, "seed": seed, "naive_mape": float(np.mean(np.abs(sums / measured - 1))),
                 "fit_mape": float(np.mean(np.abs(pred / measured - 1))),
                 "error95": float(np.quantile(np.abs(pred / measured - 1), 0.95)),
                 "entry_cv_median": statistics.median(cvs), "entry_cv_worst": max(cvs),
                 "round_cv_median": statistics.median(round_cvs), "round_cv_worst": max(round_cvs),
                 "export_seconds": t_export, "build_seconds": time.perf_counter() - t0,
                 "fit_archs": archs, "fit_measured_ms": measured.tolist()}  # fmt: skip
    log(f"{len(keys)} entries and {fit_archs} networks exported in {t_export:.0f} s and timed; CV of the calls "
        f"median {table.fit['entry_cv_median']:.3f}, worst {table.fit['entry_cv_worst']:.3f}; CV of the round "
        f"medians median {table.fit['round_cv_median']:.4f}, worst {table.fit['round_cv_worst']:.4f}")  # fmt: skip
    log(f"correction: {table.overhead_ms:.4f} ms + {table.scale:.3f} × sum + {table.per_op_ms:.4f} ms × ops "
        f"(fitted on {fit_archs} networks: off by {100 * table.fit['fit_mape']:.1f}% on them, the plain sum by "
        f"{100 * table.fit['naive_mape']:.1f}%); built in {table.fit['build_seconds']:.0f} s")  # fmt: skip
    return table


def _figures(pred, meas) -> dict[str, float]:
    import numpy as np

    require("scipy", "the latency model's validation")
    from scipy.stats import kendalltau, spearmanr

    err = np.asarray(pred) / np.asarray(meas) - 1
    return {"within_5pct": float(np.mean(np.abs(err) <= 0.05)), "within_10pct": float(np.mean(np.abs(err) <= 0.10)),
            "mape": float(np.mean(np.abs(err))), "spearman": float(spearmanr(pred, meas)[0]),
            "kendall": float(kendalltau(pred, meas)[0])}  # fmt: skip


def latency_percentiles(table: LatencyTable, space: SearchSpace, percentiles: Sequence[float] = (25, 50, 75),
                        n: int = 2000, seed: int = 0) -> list[float]:  # fmt: skip
    """Percentiles of the predicted latency of ``n`` uniformly random architectures (the budgets a comparison
    uses: a budget at the 25th percentile is met by a quarter of the space)."""
    import numpy as np

    rng = random.Random(seed)
    return [float(v) for v in np.percentile([table.predict_ms(space, random_arch(space, rng)) for _ in range(n)],
                                            percentiles)]  # fmt: skip


def validation_archs(space: SearchSpace, n: int, seed: int) -> list[list[int]]:
    """``n`` architectures: half uniform over the choices, half biased to deep and wide ones (70% of layers
    take one of the two largest candidates, no skips)."""
    rng = random.Random(seed + 7919)  # a different stream from the fit's seeds
    ops = [i for i, c in enumerate(space.candidates) if c.kind != "skip"]
    big = sorted(ops, key=lambda i: (space.candidates[i].kernel or 0) * (space.candidates[i].expansion or 0))[-2:]
    archs = [random_arch(space, rng) for _ in range(n - n // 2)]
    archs += [[rng.choice(big) if rng.random() < 0.7 else rng.choice(ops) for _ in range(space.num_layers)]
              for _ in range(n // 2)]  # fmt: skip
    return archs


def validate_table(table: LatencyTable, space: SearchSpace | None = None, n: int = 300, seed: int = 1_000,
                   correction_from: LatencyTable | None = None,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Accuracy on ``n`` architectures not used for fitting (:func:`validation_archs`), each measured twice
    (test–retest). With ``correction_from``, the same figures for that table's correction on this table's
    entries too (``ood``: fitted on another space). Shares are fractions."""
    import numpy as np

    require("scipy", "the latency model's validation")
    from scipy.stats import spearmanr

    log = log or _LOG.info
    space = space or table.space_obj()
    archs = validation_archs(space, n, seed)
    pred = np.array([table.predict_ms(space, a) for a in archs])
    naive = np.array([table.naive_ms(space, a) for a in archs])
    first, second = measure_archs(space, archs, table.protocol, times=2, label="validate")
    meas, retest = np.array(first), np.array(second)
    result = {"space": space.name, "table_space": table.space["name"], "n": n, **_figures(pred, meas),
              "retest_spearman": float(spearmanr(meas, retest)[0]),
              "retest_mape": float(np.mean(np.abs(retest / meas - 1))),
              "naive": _figures(naive, meas),
              "correction": {"overhead_ms": table.overhead_ms, "scale": table.scale, "per_op_ms": table.per_op_ms},
              "archs": archs, "measured_ms": meas.tolist(), "retest_ms": retest.tolist(),
              "predicted_ms": pred.tolist(), "naive_ms": naive.tolist()}  # fmt: skip
    result["naive_within_10pct"], result["naive_mape"] = result["naive"]["within_10pct"], result["naive"]["mape"]
    lines = [
        _summary(f"{space.name}, {n} networks", result, result["retest_spearman"]),
        _summary("plain sum", result["naive"]),
    ]
    if correction_from is not None:
        other = dataclasses.replace(table)
        other.set_correction(correction_from)
        ood = np.array([other.predict_ms(space, a) for a in archs])
        result["ood"] = {"correction_space": correction_from.space["name"], **_figures(ood, meas),
                         "predicted_ms": ood.tolist()}  # fmt: skip
        lines.append(_summary(f"correction fitted on {correction_from.space['name']}", result["ood"]))
    for line in lines:
        log(line)
    return result


def _summary(what: str, f: dict[str, Any], retest: float | None = None) -> str:
    tail = f" (test–retest {retest:.3f})" if retest is not None else ""
    return (
        f"{what}: {100 * f['within_10pct']:.1f}% within ±10%, {100 * f['within_5pct']:.1f}% within ±5%, MAPE "
        f"{100 * f['mape']:.1f}%, Spearman {f['spearman']:.3f}, Kendall {f['kendall']:.3f}{tail}"
    )


def plot_validation(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Predicted against measured latency, with the ±10% band (PNG, written atomically)."""
    import io

    matplotlib = require("matplotlib", "plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from starquad.io import atomic_write

    meas, pred = result["measured_ms"], result["predicted_ms"]
    lo, hi = min(meas + pred) * 0.9, max(meas + pred) * 1.1
    fig, ax = plt.subplots(figsize=(4.5, 4.5), constrained_layout=True)
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="0.9", label="±10%")
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.scatter(meas, pred, s=8, color="tab:red")
    ax.set(xlabel="measured ms", ylabel="predicted ms", title=f"{result['space']} ({result['n']} networks)")
    ax.legend(loc="upper left")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
