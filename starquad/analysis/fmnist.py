"""Small Fashion-MNIST trainings for the report sections, through the same engine as ``starquad train``.

Each call trains one model on a stratified subset of the training split with a fixed short recipe and
returns its final test top-1 (the last epoch's, not the best one: choosing the best epoch on the test set
would flatter every variant). Runs write into a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starquad.analysis.report import SectionContext

__all__ = ["FmnistBudget", "budget_for", "fmnist_top1", "mean_std", "seeds_for"]

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


QUICK = FmnistBudget(subset=5000, eval_subset=2000, epochs=3, seeds=2)
FULL = FmnistBudget(subset=30000, eval_subset=None, epochs=8, seeds=3)


def budget_for(ctx: SectionContext, **overrides: Any) -> FmnistBudget:
    return dataclasses.replace(FULL if ctx.full else QUICK, **overrides)


def seeds_for(ctx: SectionContext, budget: FmnistBudget) -> list[int]:
    return list(range(ctx.seed, ctx.seed + budget.seeds))


def fmnist_top1(ctx: SectionContext, model: str, model_kwargs: dict[str, Any], seed: int, budget: FmnistBudget,
                **overrides: Any) -> float:  # fmt: skip
    """Train ``model`` (with ``model_kwargs``) on Fashion-MNIST at 28² and return the final test top-1 (%)."""
    import torch

    from starquad.train import TrainConfig, train

    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="starquad-report-") as tmp:
        cfg = TrainConfig(
            model=model, model_kwargs=dict(model_kwargs), data="fashion-mnist",
            data_dir=str(ctx.data_dir) if ctx.data_dir else None, img_size=28, subset=budget.subset,
            eval_subset=budget.eval_subset, epochs=budget.epochs, batch_size=budget.batch_size, lr=budget.lr,
            weight_decay=0.05, warmup_epochs=0, min_lr=1e-5, smoothing=0.1, scale=(0.9, 1.0), ratio=(0.9, 1.1),
            color_jitter=0.0, channels_last=True, seed=seed, output=tmp, threads=threads, log_interval=10**6,
        )  # fmt: skip
        cfg = dataclasses.replace(cfg, **overrides)
        label = f"{model} {model_kwargs or ''} seed {seed}".replace("  ", " ")
        _LOG.info(f"  training {label}: {budget.subset} images × {cfg.epochs} epochs ...")
        start = time.perf_counter()
        result = train(cfg, log=lambda m: _LOG.debug(f"  [{label}] {m}"))  # epochs with -v
    _LOG.info(f"  {label}: top-1 {result['top1']:.2f}% in {time.perf_counter() - start:.0f} s")
    return float(result["top1"])


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
