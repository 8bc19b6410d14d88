"""A latency model of *this* machine: a table of op timings, a fitted correction, and its validation.

* **Table.** Every distinct (candidate op, input shape) a space can produce, plus the fixed parts (stem, the
  stage downsamplers, the head), is timed alone in the chosen runtime, prepared and exported as
  ``starquad export`` does, through ``bench``'s runners and timer (:func:`~starquad.bench.backends.make_runner`,
  :func:`~starquad.bench.latency.time_call`): warm-up, many runs, the median; an entry whose coefficient of
  variation is above ``cv_limit`` is measured again (up to ``retries`` times) and the steadiest try is kept.
* **Predictor.** ``T(arch) = overhead + scale · Σ entries``: the sum of the table entries, corrected by two
  numbers fitted (least squares) on whole-network timings of random architectures — what does not add up:
  the per-network session overhead, and fusion across op boundaries. An op the table lacks raises an error
  naming it, never a silent zero (a skip is an explicit 0 entry).
* **Fingerprint.** CPU model, core count, threads, runtime and library versions. A table measured elsewhere
  is refused with how to rebuild it: latency is a property of the machine, not of the network.

Stored as JSON, never pickled.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starquad.errors import ConfigError, StarquadError
from starquad.nas.space import SearchSpace, build, get_space, layer_ops, random_arch

__all__ = ["LatencyTable", "Protocol", "UnknownOpError", "build_table", "fingerprint", "measure_arch",
           "validate_table"]  # fmt: skip

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
    warmup: int = 10
    runs: int = 50
    cv_limit: float = 0.05
    retries: int = 2


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fingerprint(protocol: Protocol) -> dict[str, Any]:
    """What a table's timings depend on besides the network."""
    import onnxruntime
    import torch

    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "threads": protocol.threads, "runtime": protocol.runtime,
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}  # fmt: skip


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
            raise UnknownOpError(f"the latency table has no entry for '{key}' (space {self.space['name']}, "
                                 f"{self.protocol.img_size}² input); rebuild it for this space and size")
        return self.entries[key]["ms"]

    def naive_ms(self, space: SearchSpace, arch: Sequence[int]) -> float:
        """The plain sum of the entries (ProxylessNAS's lookup table)."""
        return sum(self.entry(k) for k in self.op_keys(space, arch))

    def predict_ms(self, space: SearchSpace, arch: Sequence[int]) -> float:
        """The corrected prediction ``overhead + scale · sum``."""
        return self.overhead_ms + self.scale * self.naive_ms(space, arch)

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
        s = self.space
        return get_space(s["name"], widths=tuple(s["widths"]), layers=tuple(s["layers"]), stem_stride=s["stem_stride"])


# --- measuring -------------------------------------------------------------------------------------------


def _time_module(module, shape: Sequence[int], protocol: Protocol) -> dict[str, float]:
    """Median ms and CV of ``module`` on a batch-1 input, in the protocol's runtime; re-measured while noisy."""
    import torch

    from starquad.bench.backends import make_runner
    from starquad.bench.latency import time_call

    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(0))
    run = make_runner(module.eval(), protocol.runtime, x, protocol.threads)
    best = None
    for _ in range(1 + protocol.retries):
        stats = time_call(run, warmup=protocol.warmup, runs=protocol.runs)
        if best is None or stats.cv < best.cv:
            best = stats
        if best.cv <= protocol.cv_limit:
            break
    return {"ms": best.median_ms, "cv": best.cv, "runs": best.runs}


def _fixed_modules(space: SearchSpace, protocol: Protocol) -> dict[str, tuple[Any, tuple[int, ...]]]:
    """The stem, downsamplers and head of the space's skeleton, with their input shapes, by table key."""
    import torch.nn as nn

    model = build(space, [0] * space.num_layers, num_classes=10, in_chans=protocol.in_chans)

    class Head(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m.forward_head(x)

    out = {}
    keys = _fixed_keys(space, protocol)
    shapes = [tuple(int(v) for v in k.split("@")[1].split("x")) for k in keys]
    out[keys[0]] = (model.stem, shapes[0])
    for i in range(1, len(space.widths)):
        out[keys[i]] = (model.stages[i].downsample, shapes[i])
    out[keys[-1]] = (Head(model), shapes[-1])
    return out


def asdict_space(space: SearchSpace) -> dict[str, Any]:
    return {"name": space.name, "widths": list(space.widths), "layers": list(space.layers),
            "stem_stride": space.stem_stride}  # fmt: skip


def measure_arch(space: SearchSpace, arch: Sequence[int], protocol: Protocol) -> float:
    """The measured whole-network latency (median ms) of ``arch``, the way the table's entries are timed."""
    model = build(space, arch, num_classes=10, in_chans=protocol.in_chans)
    return _time_module(model, (protocol.in_chans, protocol.img_size, protocol.img_size), protocol)["ms"]


def build_table(space: SearchSpace, protocol: Protocol, fit_archs: int = 40, seed: int = 0,
                log: Callable[[str], None] | None = None) -> LatencyTable:  # fmt: skip
    """Time every entry of ``space`` and fit the correction on ``fit_archs`` random whole networks."""
    import numpy as np

    from starquad.runtime import progress

    log = log or _LOG.info
    t0 = time.perf_counter()
    table = LatencyTable(asdict_space(space), protocol, fingerprint(protocol))
    jobs = list(_fixed_modules(space, protocol).items())
    size = protocol.img_size // space.stem_stride
    for stage, width in enumerate(space.widths):
        size = size if stage == 0 else size // 2
        for cand in space.candidates:
            key = _key(cand.name, (width, size, size))
            if cand.kind == "skip":
                table.entries[key] = {"ms": 0.0, "cv": 0.0, "runs": 0}  # identity: nothing runs
            else:
                jobs.append((key, (cand.build(width), (width, size, size))))
    for key, (module, shape) in progress(jobs, "latency table", len(jobs)):
        table.entries[key] = _time_module(module, shape, protocol)
    cvs = [e["cv"] for e in table.entries.values() if e["runs"]]
    log(f"{len(jobs)} entries timed in {time.perf_counter() - t0:.0f} s; CV median {statistics.median(cvs):.3f}, "
        f"worst {max(cvs):.3f}")  # fmt: skip
    rng = random.Random(seed)
    archs = [random_arch(space, rng) for _ in range(fit_archs)]
    sums = np.array([table.naive_ms(space, a) for a in archs])
    measured = np.array([measure_arch(space, a, protocol) for a in progress(archs, "fit", len(archs))])
    (scale, overhead), *_ = np.linalg.lstsq(np.stack([sums, np.ones_like(sums)], 1), measured, rcond=None)
    table.scale, table.overhead_ms = float(scale), float(overhead)
    table.fit = {"archs": fit_archs, "seed": seed, "naive_mape": float(np.mean(np.abs(sums / measured - 1))),
                 "build_seconds": time.perf_counter() - t0}  # fmt: skip
    log(f"correction: {overhead:.3f} ms + {scale:.3f} × sum (fitted on {fit_archs} networks; the plain sum was off "
        f"by {100 * table.fit['naive_mape']:.1f}% on them); built in {table.fit['build_seconds']:.0f} s")  # fmt: skip
    return table


def validate_table(table: LatencyTable, space: SearchSpace | None = None, n: int = 300, seed: int = 1_000,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Accuracy on ``n`` random architectures not used for fitting (half uniform, half biased to deep and wide
    ones), each measured twice (test–retest). Shares are fractions."""
    import numpy as np
    from scipy.stats import kendalltau, spearmanr

    from starquad.runtime import progress

    log = log or _LOG.info
    space = space or table.space_obj()
    rng = random.Random(seed + 7919)  # a different stream from the fit's seeds
    skip = [i for i, c in enumerate(space.candidates) if c.kind == "skip"]
    big = sorted(range(len(space.candidates)), key=lambda i: (space.candidates[i].kernel or 0)
                 * (space.candidates[i].expansion or 0))[-2:]  # fmt: skip
    archs = [random_arch(space, rng) for _ in range(n - n // 2)]
    archs += [[rng.choice(big) if rng.random() < 0.7 else rng.choice([i for i in range(len(space.candidates))
               if i not in skip]) for _ in range(space.num_layers)] for _ in range(n // 2)]  # fmt: skip
    pred = np.array([table.predict_ms(space, a) for a in archs])
    naive = np.array([table.naive_ms(space, a) for a in archs])
    first, second = [], []
    for a in progress(archs, "validate", len(archs)):
        first.append(measure_arch(space, a, table.protocol))
    for a in progress(archs, "retest", len(archs)):
        second.append(measure_arch(space, a, table.protocol))
    meas, retest = np.array(first), np.array(second)
    err, naive_err = pred / meas - 1, naive / meas - 1
    result = {
        "space": space.name, "table_space": table.space["name"], "n": n,
        "within_5pct": float(np.mean(np.abs(err) <= 0.05)), "within_10pct": float(np.mean(np.abs(err) <= 0.10)),
        "mape": float(np.mean(np.abs(err))), "spearman": float(spearmanr(pred, meas)[0]),
        "kendall": float(kendalltau(pred, meas)[0]), "retest_spearman": float(spearmanr(meas, retest)[0]),
        "retest_mape": float(np.mean(np.abs(retest / meas - 1))),
        "naive_within_10pct": float(np.mean(np.abs(naive_err) <= 0.10)),
        "naive_mape": float(np.mean(np.abs(naive_err))),
        "measured_ms": meas.tolist(), "predicted_ms": pred.tolist(),
    }  # fmt: skip
    log(f"{space.name} on a {table.space['name']} table, {n} networks: {100 * result['within_10pct']:.1f}% within "
        f"±10%, {100 * result['within_5pct']:.1f}% within ±5%, MAPE {100 * result['mape']:.1f}%, Spearman "
        f"{result['spearman']:.3f} (retest {result['retest_spearman']:.3f}); plain sum: "
        f"{100 * result['naive_within_10pct']:.1f}% within ±10%, MAPE {100 * result['naive_mape']:.1f}%")  # fmt: skip
    return result


def plot_validation(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Predicted against measured latency, with the ±10% band (PNG, written atomically)."""
    import io

    import matplotlib

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
