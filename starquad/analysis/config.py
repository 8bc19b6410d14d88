"""The options of ``starquad reproduce`` and ``starquad nas compare``, declared once (:mod:`starquad.options`).
Torch-free, so the CLI builds its parsers without importing the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from starquad.options import Options, option

__all__ = ["CompareConfig", "ReportConfig"]

# The comparison's arms, in table order: each a search (its space and options) or the random baseline.
ARMS: dict[str, dict[str, Any]] = {
    "quadranet": {"space": "quadranet"},
    "mbconv": {"space": "mbconv"},
    "interaction": {"space": "interaction"},
    "random": {"space": "quadranet", "random": True},
    "no_latency": {"space": "quadranet", "latency_loss": False},
}


@dataclass
class ReportConfig(Options):
    """What the report runs and how: the mode (quick or full), its seeds and budget, where trainings run."""

    HELP_COMMAND: ClassVar[str] = "starquad reproduce --help"

    full: bool = option(False, "more seeds, images and rounds (the full preset); default: quick, what 'make "
                        "reproduce' runs")  # fmt: skip
    sections: tuple[str, ...] | None = option(None, "only these sections (default: all; --list names them)")
    out: str = option("reproduce", "output folder")
    seed: int = option(0, "base seed", low=0)
    data_dir: str | None = option(None, "folder with dataset files (default: $STARQUAD_DATA, then system paths)")
    threads: int | None = option(None, "torch threads of the timing sections (default: torch's choice)", low=1,
                                 high=1024)  # fmt: skip
    pilot_seeds: int | None = option(None, "seeds every comparison starts with (quick 3, full 5)", low=1, high=1000)
    max_seeds: int | None = option(None, "most seeds a comparison gets, added to unresolved claims in looks of the "
                                   "pilot's size (quick 6, full 10)", low=1, high=1000)  # fmt: skip
    max_runs: int | None = option(None, "budget of trainings over all sections, counted in runs so any machine "
                                  "gives the same report (quick 150, full 400)", low=0, high=1_000_000)  # fmt: skip
    workers: int | None = option(None, "trainings at once, each with --run-threads threads (default: measured "
                                 "here, the number that finishes the most runs per hour)", low=0,
                                 high=1024)  # fmt: skip
    run_threads: int = option(1, "torch threads of every training; part of each run's recipe, so its numbers never "
                              "depend on --workers", low=1, high=1024)  # fmt: skip
    ray: str | None = option(None, "train on the Ray cluster at ADDRESS (no ADDRESS: start one here); the same "
                             "numbers as a local run", const="local")  # fmt: skip
    top1_delta: float = option(0.5, "smallest top-1 effect of interest, points: an interval inside ±δ is 'no effect "
                               "at this scale'", low=0, low_open=True, high=100)  # fmt: skip
    list_sections: bool = option(False, "list the sections and exit", flags=("--list",))


ReportConfig.PRESETS = {"quick": {"full": False}, "full": {"full": True}}


@dataclass
class CompareConfig(Options):
    """The QuadraNet paper's Table III on this machine: arms, budgets, seeds, and how trials train."""

    HELP_COMMAND: ClassVar[str] = "starquad nas compare --help"

    out: str = option("runs/nas-compare", "output folder")
    arms: tuple[str, ...] = option(tuple(ARMS), "arms", choices=tuple(ARMS))
    percentiles: tuple[float, ...] = option((25.0, 50.0, 75.0), "budgets as percentiles of quadranet's predicted "
                                            "latency", low=0, low_open=True, high=100)  # fmt: skip
    seeds: tuple[int, ...] = option((0, 1, 2), "seeds", low=0)
    quick_search: bool = option(False, "the searches' quick preset (starquad nas search --quick)")
    epochs: int = option(6, "retraining epochs", low=1, high=100_000)
    train_subset: int = option(20_000, "retraining images", low=1)
    recipe: str | None = option("fashion_mnist", "training recipe of the retraining, model options left out (a "
                                "file, or one that ships with starquad; none: the engine's defaults)")  # fmt: skip
    train_threads: int | None = option(None, "PyTorch threads of every search and retraining (default: all cores; "
                                       "1 with --ray); the same architectures need the same threads", low=1,
                                       high=1024)  # fmt: skip
    ray: bool = option(False, "run the trials through Ray Tune (pip install 'starquad[ray]'): a local cluster of "
                       "--workers CPUs, timing on the node with the latency_probe resource")  # fmt: skip
    workers: int = option(2, "Ray trials at a time", low=1, high=1024)


CompareConfig.PRESETS = {"quick": {"quick_search": True, "epochs": 3, "train_subset": 10_000}}
