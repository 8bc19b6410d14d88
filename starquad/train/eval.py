"""Evaluate saved weights on a dataset's test split (what ``starquad eval`` runs)."""

from __future__ import annotations

import os
from typing import Any

import torch

from starquad.models.checkpoint import load_checkpoint
from starquad.runtime import torch_threads
from starquad.train.config import TrainConfig
from starquad.train.engine import evaluate
from starquad.train.runner import build_loaders, build_train_model, eval_options

__all__ = ["evaluate_checkpoint"]


def evaluate_checkpoint(cfg: TrainConfig, checkpoint: str | os.PathLike) -> dict[str, Any]:
    """Build ``cfg.model`` for ``cfg.data``, load ``checkpoint`` (strict), return loss / top-1 / top-5.

    The evaluation transform follows :func:`~starquad.train.runner.eval_data_config` (timm's model data
    config for ImageFolder data: 224², bicubic, crop 0.875; ``cfg.crop_pct`` / ``cfg.interpolation`` override)."""
    cfg.validate()
    with torch_threads(cfg.threads):
        _, eval_loader, spec, num_classes = build_loaders(cfg)
        model = build_train_model(cfg, num_classes, spec.in_chans)
        load_checkpoint(model, checkpoint)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return evaluate(model, eval_loader, torch.device("cpu"), **eval_options(cfg, spec))
