"""Evaluate saved weights on a dataset's test split (what ``starquad eval`` runs)."""

from __future__ import annotations

import os
from typing import Any

import torch

from starquad.models.checkpoint import load_checkpoint
from starquad.train.config import TrainConfig
from starquad.train.engine import evaluate
from starquad.train.runner import build_loaders, build_train_model

__all__ = ["evaluate_checkpoint"]


def evaluate_checkpoint(cfg: TrainConfig, checkpoint: str | os.PathLike) -> dict[str, Any]:
    """Build ``cfg.model`` for ``cfg.data``, load ``checkpoint`` (strict), return loss / top-1 / top-5."""
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    _, eval_loader, spec = build_loaders(cfg)
    model = build_train_model(cfg, spec.num_classes, spec.in_chans)
    load_checkpoint(model, checkpoint)
    return evaluate(model, eval_loader, torch.device("cpu"))
