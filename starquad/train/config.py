"""Training configuration: one dataclass, timm-style names; YAML recipes set defaults, the CLI overrides them."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from starquad.errors import ConfigError

__all__ = ["TrainConfig", "load_recipe"]


@dataclass
class TrainConfig:
    """Everything a run needs. Learning rates are absolute (not scaled by batch size)."""

    model: str = "starnet_s050"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data: str = "fashion-mnist"
    data_dir: str | None = None
    img_size: int | None = None  # default: the dataset's own size
    subset: int | None = None  # stratified subset of the training split
    eval_subset: int | None = None
    epochs: int = 10
    batch_size: int = 128  # per process
    grad_accum: int = 1
    opt: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    sched: str = "cosine"
    warmup_epochs: int = 1
    cooldown_epochs: int = 0  # extra epochs at min_lr after the schedule (StarNet: 10)
    warmup_lr: float = 1e-5
    min_lr: float = 1e-6
    smoothing: float = 0.1
    mixup: float = 0.0
    cutmix: float = 0.0
    mixup_prob: float = 1.0
    aa: str | None = None  # timm auto-augment string, e.g. 'rand-m9-mstd0.5-inc1'
    reprob: float = 0.0
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # random-resized-crop aspect ratio range
    hflip: float = 0.5
    color_jitter: float = 0.4  # timm's default; 0 turns it off
    no_aug: bool = False  # training images get the evaluation transform (no crop/flip/augmentation)
    drop_path: float = 0.0
    model_ema: bool = False
    model_ema_decay: float = 0.9998
    clip_grad: float | None = None
    amp: bool = False  # bf16 autocast
    channels_last: bool = False
    seed: int = 0
    workers: int = 0
    output: str = "runs/train"
    resume: str | None = None
    log_interval: int = 50
    threads: int | None = None

    def validate(self) -> None:
        positive = ("epochs", "batch_size", "grad_accum", "log_interval")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "weight_decay", "smoothing", "mixup", "cutmix", "reprob", "drop_path", "warmup_epochs",
                     "color_jitter", "cooldown_epochs", "workers"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.warmup_epochs >= self.epochs and self.epochs > 1:
            raise ConfigError(f"warmup_epochs ({self.warmup_epochs}) must be smaller than epochs ({self.epochs})")
        if not 0 <= self.smoothing < 1 or not 0 <= self.reprob <= 1:
            raise ConfigError("smoothing must be in [0, 1) and reprob in [0, 1]")
        for name in ("scale", "ratio"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ConfigError(f"{name} must be two numbers 0 < MIN <= MAX, got {low} {high}")
        if self.img_size is not None and self.img_size < 8:
            raise ConfigError(f"img_size must be >= 8, got {self.img_size}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["scale"], d["ratio"] = list(self.scale), list(self.ratio)
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(values)
        for key in ("scale", "ratio"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML recipe (a flat mapping of :class:`TrainConfig` keys; ``-`` may stand for ``_``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} not found")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"recipe {path} is not valid YAML: {' '.join(str(e).split())}") from e
    if not isinstance(values, dict):
        raise ConfigError(f"recipe {path} must be a mapping of option: value")
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    TrainConfig.from_dict(values, source=str(path))  # checks the keys
    return values
