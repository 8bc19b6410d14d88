"""The options of a search, declared once (:mod:`starquad.options`): the ``starquad nas search`` flags, their
checks and the ``quick`` preset all come from here. Torch-free: the CLI builds its parser without torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from starquad.bench.backends import BACKENDS
from starquad.errors import ConfigError
from starquad.nas.latency import Protocol
from starquad.nas.space import SPACES
from starquad.options import Options, option

__all__ = ["QUICK_SEARCH", "SearchConfig", "TableConfig", "ValidationConfig"]

@dataclass
class SearchConfig(Options):
    """The options of one search (the CLI's ``starquad nas search``)."""

    HELP_COMMAND: ClassVar[str] = "starquad nas search --help"

    space: str = option("quadranet", "search space", choices=tuple(SPACES))
    budget_ms: float = option(0.0, "latency budget of one batch-1 inference, ms, in the table's runtime and threads",
                              required=True)  # fmt: skip
    out: str = option("runs/nas", "run directory")
    table: str | None = option(None, "latency table (default: this machine's cached one; a quick one is built when "
                               "missing)")  # fmt: skip
    runtime: str = option("onnxruntime", "the latency table's runtime")
    threads: int = option(1, "the latency runtime's threads (the table's)", low=1, high=1024)
    train_threads: int | None = option(None, "PyTorch threads for the supernet (default: all cores)", low=1,
                                       high=1024)  # fmt: skip
    img_size: int = option(28, "input side", low=8, high=2048)
    data: str = option("fashion-mnist", "dataset held in memory")
    data_dir: str | None = option(None, "folder with dataset files (default: $STARQUAD_DATA, then system paths)")
    subset: int = option(12_000, "training images used (weights and α together)", low=1)
    arch_fraction: float = option(0.2, "of them, the share held out for the architecture steps", low=0,
                                  low_open=True, high=0.999)  # fmt: skip
    eval_subset: int = option(2_000, "test images for the supernet's accuracy of the derived network", low=1)
    epochs: int = option(8, "epochs in all", low=1, high=100_000)
    warmup_epochs: int = option(3, "weight-only epochs first", low=0, high=100_000)
    batch_size: int = option(128, "batch size", low=1, high=65_536)
    lr: float = option(2e-3, "weights' AdamW learning rate", low=0, low_open=True, high=10)
    weight_decay: float = option(0.05, "weights' weight decay", low=0, high=10)
    arch_lr: float = option(6e-3, "α's Adam learning rate", low=0, low_open=True, high=10)
    beta: float = option(2.0, "latency penalty exponent", low=0, low_open=True, high=100)
    latency_loss: bool = option(True, "the latency term in the architecture loss (--no-latency-loss: the "
                                "no-latency baseline, α steps on cross-entropy alone)")  # fmt: skip
    low: float = option(0.9, "lower end of the accepted band of measured latency, × budget", low=0, low_open=True,
                        high=1)  # fmt: skip
    tries: int = option(6, "derivations at most, each re-derived with the measured/predicted ratio", low=1, high=100)
    seed: int = option(0, "seed", low=0)
    resume: bool = option(False, "continue the interrupted search in --out")

    def validate(self) -> None:
        super().validate()
        if not self.budget_ms > 0:
            raise ConfigError(f"budget_ms must be a positive number of milliseconds, got {self.budget_ms!r}")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(f"warmup_epochs ({self.warmup_epochs}) must be smaller than epochs ({self.epochs})")



# --quick: a search in about a minute on 2 cores (with a latency table at hand).
SearchConfig.PRESETS = {"quick": {"epochs": 4, "warmup_epochs": 1, "subset": 6000, "eval_subset": 1000}}
QUICK_SEARCH = SearchConfig.PRESETS["quick"]


@dataclass
class TableConfig(Options):
    """The options of ``starquad nas latency build``: what is timed, how (the :class:`Protocol`), and the fit."""

    HELP_COMMAND: ClassVar[str] = "starquad nas latency build --help"

    space: str = option("quadranet", "search space", choices=tuple(SPACES), required=True)
    runtime: str = option(Protocol.runtime, "runtime", choices=BACKENDS)
    threads: int = option(Protocol.threads, "intra-op threads (1: the steadiest timings on a 2-core machine)", low=1,
                          high=1024)  # fmt: skip
    img_size: int = option(Protocol.img_size, "input side (Fashion-MNIST's)", low=8, high=2048)
    in_chans: int = option(Protocol.in_chans, "input channels", low=1, high=4096)
    rounds: int = option(Protocol.rounds, "interleaved timing rounds over every item", low=1, high=1000)
    retries: int = option(Protocol.retries, f"up to this many times, {Protocol.rounds} more rounds for the items "
                          f"whose round medians vary by over {Protocol.cv_limit:.0%}", low=0, high=100)  # fmt: skip
    fit: int = option(60, "random networks to fit the correction on", low=3, high=100_000)
    seed: int = option(0, "seed of the fitting networks", low=0)
    out: str | None = option(None, "where to write the table (default: the cache folder)")

    def protocol(self) -> Protocol:
        return Protocol(runtime=self.runtime, threads=self.threads, img_size=self.img_size, in_chans=self.in_chans,
                        rounds=self.rounds, retries=self.retries)  # fmt: skip


# --quick: a rough table in about a minute (3 rounds, no re-timing, 20 fitting networks).
TableConfig.PRESETS = {"quick": {"rounds": 3, "retries": 0, "fit": 20}}


@dataclass
class ValidationConfig(Options):
    """The options of ``starquad nas latency validate``."""

    HELP_COMMAND: ClassVar[str] = "starquad nas latency validate --help"

    table: str = option("", "a table from 'nas latency build'", required=True)
    correction_from: str | None = option(None, "also report another table's correction on this table's entries, "
                                         "from the same measurements (out of distribution: fit on one space, "
                                         "validate on another)")  # fmt: skip
    n: int = option(300, "networks", low=2, high=100_000)
    seed: int = option(1000, "seed", low=0)
    json: str | None = option(None, "write the figures as JSON (a file)")
    plot: str | None = option(None, "predicted vs measured scatter (a PNG file)")
