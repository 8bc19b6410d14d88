"""Training configuration: the one list of training options.

:class:`TrainConfig` is a dataclass of :mod:`starquad.options` fields: each holds its help text, timm's flag
spellings, its range and whether it may change on ``--resume``. Everything else derives from it:

* the ``starquad train`` flags (:func:`add_train_arguments`: one flag per field, help from the metadata,
  the default read from the field, so nothing is restated by hand);
* type coercion and range checks (:meth:`TrainConfig.from_dict`, :meth:`TrainConfig.validate`), the one
  place where a recipe value, a flag or an API argument is checked — ``lr: 1e-3`` (a string to PyYAML)
  becomes 0.001, ``warmup_epochs: one`` is refused by name;
* the merge: recipe < command-line flags < the resumed run (:func:`resume_config`), where flags that may
  change (``RESUMABLE``) apply and any other difference is refused by name.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from starquad.errors import ConfigError
from starquad.options import Options, option

__all__ = ["INTERPOLATIONS", "RESUMABLE", "TrainConfig", "add_train_arguments", "load_recipe", "resume_config"]

INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "box", "hamming", "lanczos")  # timm's resize modes


@dataclass
class TrainConfig(Options):
    """Everything a run needs. Learning rates are absolute (not scaled by batch size)."""

    HELP_COMMAND: ClassVar[str] = "starquad train --help"

    model: str = option("starnet_s050", "model name (see 'starquad models')")
    model_kwargs: dict[str, Any] = option(help="model options as a YAML/JSON mapping, e.g. '{stem_stride: 1}'",  # noqa: RUF009
                                          default_factory=dict)  # fmt: skip
    data: str = option("fashion-mnist", "dataset name (see 'starquad data list')", flags=("--dataset",))
    data_dir: str | None = option(None, "folder with the dataset files (ImageFolder: ROOT with train/ and val/)",
                                  resumable=True)  # fmt: skip
    img_size: int | None = option(None, "input side (default: the dataset's, else the model's)", low=8, high=2048)
    subset: int | None = option(None, "train on a class-stratified subset of this many images", low=1)
    eval_subset: int | None = option(None, "evaluate on a class-stratified subset of this many images", low=1)
    holdout: int | None = option(None, "hold this many training images out of training (class-stratified, always the "
                                 "same ones) and evaluate on them instead of the test split: tune a recipe without "
                                 "looking at the test set (in-memory datasets: fashion-mnist, digits, synthetic)",
                                 low=1)  # fmt: skip
    epochs: int = option(10, "epochs of the schedule (on --resume: more extends a finished run)", low=1,
                         high=100_000, resumable=True)  # fmt: skip
    time_limit: float | None = option(None, "wall-time budget of this invocation in seconds: after each epoch the "
                                      "schedule is re-planned, down or back up, to the epochs that still fit at the "
                                      "last three epochs' mean time (never more than --epochs), so the run ends "
                                      "inside the budget on a loaded or slower machine; every re-plan is logged and "
                                      "written to args.yaml ('none': no limit)", low=1, resumable=True)  # fmt: skip
    batch_size: int = option(128, "batch size per process", flags=("-b",), low=1, high=65_536)
    grad_accum: int = option(1, "gradient accumulation steps", flags=("--grad-accum-steps",), low=1, high=1024)
    opt: str = option("adamw", "timm optimizer name (create_optimizer_v2)")
    lr: float = option(2e-3, "peak learning rate, absolute", low=0, high=10, low_open=True)
    weight_decay: float = option(0.05, "weight decay", flags=("--wd",), low=0, high=10)
    momentum: float = option(0.9, "optimizer momentum (SGD, RMSprop, …)", low=0, high=1)
    sched: str = option("cosine", "timm scheduler name (create_scheduler_v2)")
    warmup_epochs: int = option(1, "linear warm-up epochs", low=0, high=100_000)
    cooldown_epochs: int = option(0, "epochs at min_lr after the schedule (StarNet: 10)", low=0, high=100_000)
    warmup_lr: float = option(1e-5, "learning rate at the start of warm-up", low=0, high=10)
    min_lr: float = option(1e-6, "final learning rate", low=0, high=10)
    smoothing: float = option(0.1, "label smoothing", low=0, high=0.999)
    mixup: float = option(0.0, "mixup alpha (0: off)", low=0, high=100)
    cutmix: float = option(0.0, "cutmix alpha (0: off)", low=0, high=100)
    mixup_prob: float = option(1.0, "probability of mixup or cutmix per batch", low=0, high=1)
    aa: str | None = option(None, "timm auto-augment, e.g. rand-m9-mstd0.5-inc1")
    reprob: float = option(0.0, "random-erasing probability", low=0, high=1)
    scale: tuple[float, float] = option((0.08, 1.0), "random-resized-crop area range MIN MAX", low=0, high=1,
                                        low_open=True)  # fmt: skip
    ratio: tuple[float, float] = option((3 / 4, 4 / 3), "random-resized-crop aspect-ratio range MIN MAX", low=0,
                                        high=100, low_open=True)  # fmt: skip
    hflip: float = option(0.5, "horizontal-flip probability", low=0, high=1)
    color_jitter: float = option(0.4, "colour-jitter strength (timm's default; 0: off)", low=0, high=10)
    no_aug: bool = option(False, "no training augmentation (training images get the evaluation transform)")
    batch_aug: bool = option(False, "augment whole batches with tensor ops (random-resized crop, flip, random "
                             "erasing) instead of PIL per image: in-memory datasets only (fashion-mnist, digits, "
                             "synthetic); needs color_jitter 0 and no aa")  # fmt: skip
    crop_pct: float | None = option(None, "evaluation centre-crop fraction (default: the model cfg's, e.g. 0.875 "
                                    "for ImageNet-size inputs; 1 for small datasets)", low=0, high=1,
                                    low_open=True)  # fmt: skip
    interpolation: str | None = option(None, "evaluation resize interpolation (default: the model cfg's, e.g. bicubic)")
    tta_flip: bool = option(False, "evaluate each image and its mirror image and average the logits (flip "
                            "test-time augmentation: twice the evaluation time)", resumable=True)  # fmt: skip
    tta_shift: int = option(0, "also evaluate copies of each image moved this many pixels right, left, down and up "
                            "(the border black, as in a padded random crop) and average the logits (0: off; five "
                            "times the evaluation time, ten with tta_flip)", low=0, high=64,
                            resumable=True)  # fmt: skip
    eval_interval: int = option(1, "evaluate after every N-th epoch and always after the last (0: after the last "
                                "only); time_limit plans for the evaluations", low=0, high=100_000,
                                resumable=True)  # fmt: skip
    drop_path: float = option(0.0, "stochastic depth rate", low=0, high=0.999)
    model_ema: bool = option(False, "keep an EMA of the weights and evaluate it too")
    model_ema_decay: float = option(0.9998, "EMA decay", low=0, high=1)
    model_ema_warmup: bool = option(True, "ramp the EMA decay up from 0 (timm's warm-up, 1 - (1 + step)^-2/3, capped "
                                    "at model_ema_decay) so that a short run's EMA is not a blend with the first "
                                    "steps' weights (0.9998 keeps 45% of them after 4,000 steps)")  # fmt: skip
    clip_grad: float | None = option(None, "clip the gradient norm to this value", low=0, high=1e6, low_open=True)
    amp: bool = option(False, "bf16 autocast")
    channels_last: bool = option(False, "channels-last memory format")
    seed: int = option(0, "seed", low=0, high=2**32 - 1)
    workers: int = option(0, "data-loading worker processes", flags=("-j",), low=0, high=256, resumable=True)
    output: str = option("runs/train", "run directory")
    resume: str | None = option(None, "continue the run in this directory after its last finished epoch")
    log_interval: int = option(50, "steps between progress lines", low=1, resumable=True)
    threads: int | None = option(None, "torch threads per process (default: torch's choice)", low=1, high=1024,
                                 resumable=True)  # fmt: skip

    def validate(self) -> None:
        """Range checks of every field (from the metadata) and the few checks that relate two fields."""
        super().validate()
        if self.warmup_epochs >= self.epochs and self.epochs > 1:
            raise ConfigError(f"warmup_epochs ({self.warmup_epochs}) must be smaller than epochs ({self.epochs})")
        for name in ("scale", "ratio"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ConfigError(f"{name} must be two numbers 0 < MIN <= MAX, got {low} {high}")
        if self.interpolation is not None and self.interpolation not in INTERPOLATIONS:
            choices = ", ".join(INTERPOLATIONS)
            raise ConfigError(f"unknown interpolation '{self.interpolation}'; choose one of: {choices}")
        if self.batch_aug and (self.aa or self.color_jitter > 0):
            what = "aa (auto-augment)" if self.aa else f"color_jitter {self.color_jitter:g}"
            raise ConfigError(f"batch_aug does crops, flips and random erasing only, not {what}; set "
                              f"{'aa: null' if self.aa else 'color_jitter: 0'} or batch_aug: false")  # fmt: skip
        if self.min_lr > self.lr:
            raise ConfigError(f"min_lr ({self.min_lr:g}) must not exceed lr ({self.lr:g})")


RESUMABLE = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["resumable"])


def asked_options(cfg: TrainConfig) -> set[str]:
    """The options of ``cfg`` that differ from their defaults: what an API caller asked for on resume."""
    defaults = TrainConfig()
    return {f.name for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(defaults, f.name)}


def resume_config(saved: TrainConfig, given: TrainConfig, asked: set[str] | None = None) -> tuple[TrainConfig,
                                                                                                  list[str]]:
    """The config of a resumed run: the saved run's, with the ``RESUMABLE`` options of ``given`` applied.

    ``asked`` names the options the caller set now (the CLI: recipe keys and flags given; default: those of
    ``given`` that differ from their defaults). Asking for another value of a non-resumable option is refused.

    Returns:
        The merged config and a list of ``name: old -> new`` changes.
    """
    asked = asked_options(given) if asked is None else asked
    refused, changes, updates = [], [], {}
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("resume", "output") or f.name not in asked:
            continue
        new, old = getattr(given, f.name), getattr(saved, f.name)
        if new == old:
            continue
        if f.metadata["resumable"]:
            updates[f.name] = new
            changes.append(f"{f.name}: {old} -> {new}")
        else:
            refused.append(f"{f.name} (run has {old!r}, asked for {new!r})")
    if refused:
        raise ConfigError(f"--resume {given.resume}: cannot change {'; '.join(refused)}; on resume only "
                          f"{', '.join(RESUMABLE)} may change (start a new run with --output for the rest)")
    merged = dataclasses.replace(saved, **updates, resume=given.resume, output=given.resume)
    merged.validate()
    return merged, changes


def read_yaml_mapping(path: Path, label: str, missing_hint: str = "", allow_empty: bool = True) -> dict[str, Any]:
    """The mapping in a YAML file (a recipe, a run's ``args.yaml``); errors name ``label`` and what was wrong."""
    if not path.is_file():
        raise ConfigError(f"{label} not found{missing_hint}")
    try:
        values = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{label} is not valid YAML: {' '.join(str(e).split())[:160]}") from None
    if values is None:
        if allow_empty:
            return {}
        raise ConfigError(f"{label} is empty")
    if not isinstance(values, dict):
        raise ConfigError(f"{label} must be a mapping of option: value, got {type(values).__name__}")
    return values


def recipe_names() -> list[str]:
    """The recipes that ship with starquad (``starquad/recipes/*.yaml``), by name."""
    from importlib.resources import files

    return sorted(p.name.removesuffix(".yaml") for p in files("starquad.recipes").iterdir() if p.name.endswith(".yaml"))


def recipe_path(recipe: str | os.PathLike) -> Path:
    """A recipe file: an existing path, else a recipe that ships with starquad by name (``fashion_mnist``)."""
    path = Path(recipe)
    if path.exists() or path.suffix or os.sep in str(recipe):
        return path
    if str(recipe) not in recipe_names():
        raise ConfigError(f"no recipe '{recipe}': not a file, and starquad ships {', '.join(recipe_names())}")
    from importlib.resources import files

    return Path(str(files("starquad.recipes") / f"{recipe}.yaml"))


def load_recipe(recipe: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML recipe (a flat mapping of :class:`TrainConfig` keys; ``-`` may stand for ``_``): a file, or
    the name of one that ships with starquad (:func:`recipe_names`)."""
    path = recipe_path(recipe)
    values = read_yaml_mapping(path, f"recipe {path}")
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    TrainConfig.from_dict(values, source=str(path))  # checks keys, types and ranges
    return values


def add_train_arguments(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """One flag per :class:`TrainConfig` field (``--field-name`` plus timm's spellings from the metadata); every
    flag defaults to None, so a recipe (``-c``) can set the value and a flag given on the command line overrides
    it (:meth:`starquad.options.Options.add_arguments`)."""
    TrainConfig.add_arguments(parser, only=only)


def config_from_args(args: argparse.Namespace, recipe: str | None = None) -> TrainConfig:
    """Recipe values, overridden by the flags given on the command line (those not None)."""
    return TrainConfig.from_dict(_given_values(args, recipe), source=recipe or "command line")


def asked_on_command_line(args: argparse.Namespace, recipe: str | None = None) -> set[str]:
    """The options a command line sets (recipe keys and flags given), whatever their values."""
    return set(_given_values(args, recipe))


def _given_values(args: argparse.Namespace, recipe: str | None) -> dict[str, Any]:
    values = load_recipe(recipe) if recipe else {}
    values.update(TrainConfig.given(args))
    return values
