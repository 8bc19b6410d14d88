"""The parts of timm's model surface that every starquad family shares (one home, not one per model).

Model files (this one, the families, the block skeleton) do without ``from __future__ import annotations``:
torch.fx copies ``forward``'s annotations into the code it generates, where the string ``'torch.Tensor'``
becomes a type TorchScript cannot resolve, so a traced-then-scripted model would fail.
"""

import torch
import torch.nn as nn
from timm.layers import SelectAdaptivePool2d, register_notrace_function
from timm.models import checkpoint_seq
from timm.models._features import feature_take_indices

from starquad.errors import ConfigError, InputShapeError

__all__ = ["ModelSurface", "check_image_batch"]


@register_notrace_function  # torch.fx: a leaf call, not control flow on a traced shape
def check_image_batch(x: torch.Tensor, in_chans: int, name: str) -> None:
    """Refuse a tensor that is not an ``(N, in_chans, H, W)`` batch, saying what to change (else torch fails
    later with a message about permute or conv weights). Models call it eagerly only: not while scripting or
    tracing, where shapes are fixed by then."""
    if x.dim() != 4:
        hint = ": add the batch dimension, x.unsqueeze(0)" if x.dim() == 3 else ""
        raise InputShapeError(f"{name} takes an (N, C, H, W) batch of images, got a tensor of shape "
                              f"{tuple(x.shape)}{hint}")  # fmt: skip
    if x.shape[1] != in_chans:
        raise InputShapeError(f"{name} takes {in_chans}-channel images (in_chans={in_chans}), got a batch of shape "
                              f"{tuple(x.shape)} with {x.shape[1]} channels")  # fmt: skip


class ModelSurface:
    """Mixin for ``nn.Module`` models with ``stem``, ``stages``, ``head``, ``num_features`` and a
    ``grad_checkpointing`` flag. Families override :meth:`_forward_stage` (how one stage runs) and
    :meth:`_spatial_norm` (a norm on the last feature map, if the family has one)."""

    # (no class-level annotations of submodules here: TorchScript would read them as attribute types)
    grad_checkpointing = False

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

    @staticmethod
    def _new_pool(global_pool: str, flatten: bool = True) -> SelectAdaptivePool2d:
        """timm's global pool; ``''`` passes the 4-D map through unflattened (timm's ``reset_classifier(0, '')``)."""
        return SelectAdaptivePool2d(pool_type=global_pool, flatten=flatten and bool(global_pool))

    @torch.jit.unused
    def _run_sequential(self, seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """Run ``seq``, with activation checkpointing per module when enabled (saves memory, costs a recompute).
        Not for ``forward`` (TorchScript takes no module arguments); forward methods inline the same two lines."""
        if self.grad_checkpointing:
            return checkpoint_seq(seq, x)
        return seq(x)

    @torch.jit.unused
    def _forward_stage(self, stage: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self._run_sequential(stage, x)

    @torch.jit.unused
    def _spatial_norm(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs (``indices``: last n if int, these if a list, all if None), timm's contract."""
        if output_fmt != "NCHW":
            raise ConfigError(f"{type(self).__name__} gives NCHW intermediates, not {output_fmt}")
        take, max_index = feature_take_indices(len(self.stages), indices)
        last = len(self.stages) - 1
        stages = self.stages[: max_index + 1] if stop_early else self.stages
        intermediates = []
        x = self.stem(x)
        for i, stage in enumerate(stages):
            x = self._forward_stage(stage, x)
            if i in take:
                intermediates.append(self._spatial_norm(x) if norm and i == last else x)
        if intermediates_only:
            return intermediates
        return (self._spatial_norm(x) if i == last else x), intermediates
