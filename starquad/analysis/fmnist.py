"""Small Fashion-MNIST trainings for the report sections, through the same engine as ``starquad train``.

Each call trains one model on a stratified subset of the training split with a fixed short recipe and
returns its final test top-1 (the last epoch's, not the best one: choosing the best epoch on the test set
would flatter every variant). The training itself writes into a temporary folder that is removed afterwards;
what it found is **kept** in ``OUT/runs/`` (one small JSON per run, written atomically) under a key made of the
whole training configuration and a fingerprint of the code that trains (``starquad/{ops,models,data,train}``).
A report run that is interrupted and started again with the same arguments therefore retrains nothing it
already finished, and gets the same numbers; a code change in those packages retrains everything.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starquad.analysis.report import SectionContext

__all__ = ["FmnistBudget", "RunRequest", "budget_for", "code_fingerprint", "fmnist_run", "fmnist_top1", "mean_std",
           "read_kept", "run_config", "seeds_for", "train_request"]

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class FmnistBudget:
    """How much each trained variant gets: images, epochs, seeds."""

    subset: int
    eval_subset: int | None
    epochs: int
    seeds: int
    batch_size: int = 128
    lr: float = 4e-3


# Every accuracy is on the whole test split (10,000 images: binomial standard error ≈ 0.35 points at 85%, where
# 2,000 images gave ≈ 0.8); it costs seconds per run.
# --quick: 5,000 images × 3 epochs. 3,000 images made each run 1.5× as fast but resolved no more claims: the
# all-star vs all-sum and placement gaps fell inside their noise, and DemoNets spread by 7–25 points between seeds.
QUICK = FmnistBudget(subset=5000, eval_subset=None, epochs=3, seeds=3)
# --full: 10,000 images × 3 epochs, twice a quick training's images, on the stride-1 StarNet and the wider DemoNets;
# with its plan (5-seed pilots, looks at 10, at most 400 runs) a few hours of 2 cores, run in resumable parts.
FULL = FmnistBudget(subset=10000, eval_subset=None, epochs=3, seeds=5)


def budget_for(ctx: SectionContext, **overrides: Any) -> FmnistBudget:
    return dataclasses.replace(FULL if ctx.full else QUICK, **overrides)


def seeds_for(ctx: SectionContext, budget: FmnistBudget) -> list[int]:
    """The seeds of a seeded section: ``ctx.n_seeds`` (the report's sequential plan) or the budget's."""
    return list(range(ctx.seed, ctx.seed + (ctx.n_seeds or budget.seeds)))


@functools.cache
def code_fingerprint() -> str:
    """A hash of the source that decides a training's outcome (``starquad/{ops,models,data,train}``: the Python
    files and the C++ extension's source)."""
    import starquad

    root = Path(starquad.__file__).parent
    h = hashlib.sha256()
    sources = (p for pkg in ("ops", "models", "data", "train") for pattern in ("*.py", "*.cpp")
               for p in (root / pkg).rglob(pattern))  # fmt: skip
    for path in sorted(sources):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def run_config(ctx: SectionContext, model: str, model_kwargs: dict[str, Any], seed: int, budget: FmnistBudget,
               **overrides: Any):  # fmt: skip
    """The :class:`~starquad.train.TrainConfig` of one report training: the short recipe, the batch augmentation
    path (tensor ops on whole batches), ``ctx.run_threads`` threads (part of the recipe: a run's numbers never
    depend on what runs beside it), one evaluation after the last epoch (the only one the report reads)."""
    from starquad.train import TrainConfig

    cfg = TrainConfig(
        model=model, model_kwargs=dict(model_kwargs), data="fashion-mnist",
        data_dir=str(ctx.data_dir) if ctx.data_dir else None, img_size=28, subset=budget.subset,
        eval_subset=budget.eval_subset, epochs=budget.epochs, batch_size=budget.batch_size, lr=budget.lr,
        weight_decay=0.05, warmup_epochs=0, min_lr=1e-5, smoothing=0.1, scale=(0.9, 1.0), ratio=(0.9, 1.1),
        color_jitter=0.0, batch_aug=True, channels_last=True, seed=seed, output="", threads=ctx.run_threads,
        log_interval=10**6, eval_interval=0,
    )  # fmt: skip
    return dataclasses.replace(cfg, **overrides)


@dataclass(frozen=True)
class RunRequest:
    """A training the report needs and has not kept yet: its recipe, the key it is kept under, and where."""

    cfg: Any  # TrainConfig
    key: str
    kept: Path
    label: str
    weights: Path | None = None  # where the final weights are kept too (safetensors), for sections that need them


def train_request(request: RunRequest) -> dict[str, Any]:
    """Train one request and keep its result (atomically, under its key); what :func:`fmnist_run` returns."""
    from starquad.io import atomic_write
    from starquad.train import train

    with tempfile.TemporaryDirectory(prefix="starquad-report-") as tmp:
        _LOG.info(f"  training {request.label}: {request.cfg.subset} images × {request.cfg.epochs} epochs ...")
        start = time.perf_counter()
        result = train(dataclasses.replace(request.cfg, output=tmp),
                       log=lambda m: _LOG.debug(f"  [{request.label}] {m}"))  # fmt: skip
        seconds = time.perf_counter() - start
        with open(Path(result["output"]) / "summary.csv", newline="") as f:
            epoch_seconds = [float(row["epoch_seconds"]) for row in csv.DictReader(f)]
        if request.weights is not None:  # before the result: a kept result promises its weights
            atomic_write(request.weights, (Path(result["output"]) / "last.safetensors").read_bytes())
    out = {"top1": float(result["top1"]), "eval_loss": float(result["loss"]), "seconds": seconds,
           "epoch_seconds": epoch_seconds}  # fmt: skip
    atomic_write(request.kept, json.dumps({"key": request.key, "result": out}, indent=1) + "\n")
    _LOG.info(f"  {request.label}: top-1 {out['top1']:.2f}% in {seconds:.0f} s")
    return out


def read_kept(path: Path, key: str) -> dict[str, Any] | None:
    """The kept result at ``path`` if it is there, readable and of this key."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if record.get("key") == key:
            return record["result"]
    except (ValueError, KeyError, TypeError):
        pass  # a damaged record is trained again and overwritten
    _LOG.warning(f"  {path} is not a usable kept run; training it again")
    return None


def fmnist_run(ctx: SectionContext, model: str, model_kwargs: dict[str, Any], seed: int, budget: FmnistBudget,
               keep_weights: bool = False, **overrides: Any) -> dict[str, Any]:  # fmt: skip
    """Train ``model`` (with ``model_kwargs``) on Fashion-MNIST at 28² (or kept from an earlier run).

    With ``keep_weights`` the final weights are kept beside the result (``OUT/runs/*.safetensors``) and their path
    comes back as ``weights``; a run kept without them is trained again (the same numbers).

    In the report's collect pass (``ctx.collecting``) nothing trains: the run is added to ``ctx.pending`` (the
    report trains those side by side, :mod:`starquad.analysis.pool`) and a placeholder comes back.

    Returns:
        ``top1`` (final test top-1, %), ``seconds`` (whole training), ``epoch_seconds`` (one per epoch),
        ``kept`` (True when it came from ``OUT/runs/`` instead of being trained now).
    """
    cfg = run_config(ctx, model, model_kwargs, seed, budget, **overrides)
    key = json.dumps({"config": dataclasses.asdict(cfg), "code": code_fingerprint()}, sort_keys=True, default=str)
    kept = ctx.out_dir / "runs" / f"{model}-s{seed}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    ctx.run_keys.add(kept.name)  # the report's budget counts distinct runs, trained now or read back
    label = f"{model} {model_kwargs or ''} seed {seed}".replace("  ", " ")
    weights = kept.with_suffix(".safetensors") if keep_weights else None
    record = read_kept(kept, key)
    if record is not None and weights is not None:
        record = {**record, "weights": str(weights)} if weights.is_file() else None
    if record is not None and kept.name in ctx.fresh:  # trained by this invocation, before the section ran
        ctx.trained_seconds.append(float(record["seconds"]))
        return {**record, "kept": False}
    if record is not None:
        _LOG.info(f"  {label}: top-1 {record['top1']:.2f}% (kept: {kept.name})")
        ctx.kept_seconds.append(float(record["seconds"]))
        return {**record, "kept": True}
    request = RunRequest(cfg, key, kept, label, weights)
    extra = {} if weights is None else {"weights": str(weights)}
    if ctx.collecting:
        ctx.pending.append(request)
        return {"top1": 50.0, "seconds": 1.0, "epoch_seconds": [1.0] * cfg.epochs, "kept": False, **extra}
    result = train_request(request)
    ctx.trained_seconds.append(result["seconds"])
    return {**result, "kept": False, **extra}


def fmnist_top1(ctx: SectionContext, model: str, model_kwargs: dict[str, Any], seed: int, budget: FmnistBudget,
                **overrides: Any) -> float:  # fmt: skip
    """The final test top-1 (%) of :func:`fmnist_run`."""
    return fmnist_run(ctx, model, model_kwargs, seed, budget, **overrides)["top1"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
