"""The parts of timm's model surface that every starquad family shares (one home, not one per model)."""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.models import checkpoint_seq

__all__ = ["ModelSurface"]


class ModelSurface:
    """Mixin for ``nn.Module`` models with ``head``, ``num_features`` and a ``grad_checkpointing`` flag."""

    grad_checkpointing: bool = False
    head: nn.Module
    num_features: int

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def _new_head(self, num_classes: int) -> nn.Module:
        """A fresh Linear classifier on ``num_features`` (Identity for ``num_classes=0``: pre-logits)."""
        self.num_classes = num_classes
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def _run_sequential(self, seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """Run ``seq``, with activation checkpointing per module when enabled (saves memory, costs a recompute)."""
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(seq, x)
        return seq(x)
