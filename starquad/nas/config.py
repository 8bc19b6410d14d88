"""The options of a search (torch-free: the CLI builds its parser from them without importing torch)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from starquad.errors import ConfigError

__all__ = ["QUICK_SEARCH", "SearchConfig"]

# --quick: a search in about a minute on 2 cores (with a latency table at hand)
QUICK_SEARCH = {"epochs": 4, "warmup_epochs": 1, "subset": 6000, "eval_subset": 1000}


@dataclass
class SearchConfig:
    """The options of one search (the CLI's ``starquad nas search``)."""

    space: str = "quadranet"
    budget_ms: float = 0.0
    out: str = "runs/nas"
    table: str | None = None  # a latency table; default: this machine's cached one, built when missing
    runtime: str = "onnxruntime"
    threads: int = 1  # the latency runtime's threads (the table's)
    train_threads: int | None = None  # PyTorch threads for the supernet (default: all cores)
    img_size: int = 28
    data: str = "fashion-mnist"
    data_dir: str | None = None
    subset: int = 12_000  # training images used (weights and α together)
    arch_fraction: float = 0.2  # of them, held out for the architecture steps
    eval_subset: int = 2_000  # test images for the supernet's accuracy of the derived network
    epochs: int = 8
    warmup_epochs: int = 3
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    arch_lr: float = 6e-3
    beta: float = 2.0
    latency_loss: bool = True  # False: the "no latency loss" baseline (α steps on cross-entropy alone)
    low: float = 0.9  # the derived network's measured latency should be in [low · budget, budget]
    tries: int = 6
    seed: int = 0
    resume: bool = False

    def validate(self) -> None:
        from starquad.nas.space import SPACES

        problems = []
        if self.space not in SPACES:
            problems.append(f"space '{self.space}' (choose one of: {', '.join(SPACES)})")
        if not (isinstance(self.budget_ms, (int, float)) and math.isfinite(self.budget_ms) and self.budget_ms > 0):
            problems.append(f"budget_ms {self.budget_ms!r} (a positive number of milliseconds)")
        if not 0 <= self.warmup_epochs < self.epochs:
            problems.append(f"warmup_epochs {self.warmup_epochs} (need 0 <= warmup_epochs < epochs = {self.epochs})")
        if not 0 < self.arch_fraction < 1:
            problems.append(f"arch_fraction {self.arch_fraction} (a fraction in (0, 1))")
        if not 0 < self.low <= 1:
            problems.append(f"low {self.low} (a fraction in (0, 1])")
        for name in ("subset", "eval_subset", "batch_size", "threads", "tries", "img_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} {getattr(self, name)} (must be >= 1)")
        for name in ("lr", "arch_lr", "beta"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} {getattr(self, name)} (must be > 0)")
        if problems:
            raise ConfigError("bad search options: " + "; ".join(problems))
