"""Fold BatchNorm into neighbouring linear layers for inference.

In eval mode a BatchNorm is a per-channel affine map ``y = a·x + b``, so it merges into the conv that
precedes it (torch's ``fuse_conv_bn_eval``). A BatchNorm that precedes global average pooling and a
Linear classifier (StarNet's head: BN → avg-pool → Linear) merges into that Linear instead, because
pooling commutes with a per-channel affine map: ``W·pool(a·x + b) + c = (W·diag(a))·pool(x) + (W·b + c)``.
After folding, ``forward_features`` of such a model returns un-normalised features; logits are the
same.
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_batchnorm"]


def _fold_sequential_pairs(module: nn.Module) -> int:
    """Fold every Conv2d → BatchNorm2d pair that sits consecutively in an ``nn.Sequential``."""
    folded = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for prev, name in itertools.pairwise(names):
            conv, bn = seq._modules[prev], seq._modules[name]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                seq._modules[prev] = fuse_conv_bn_eval(conv, bn)
                seq._modules[name] = nn.Identity()
                folded += 1
    return folded


@torch.no_grad()
def _fold_norm_into_head(model: nn.Module) -> int:
    """Fold a timm-style ``model.norm`` BatchNorm2d → average pool → Linear ``model.head``."""
    norm, head = getattr(model, "norm", None), getattr(model, "head", None)
    pool_type = getattr(getattr(model, "global_pool", None), "pool_type", None)
    if not (isinstance(norm, nn.BatchNorm2d) and isinstance(head, nn.Linear) and pool_type == "avg"):
        return 0
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    new_head = nn.Linear(head.in_features, head.out_features).to(head.weight)
    new_head.weight.copy_(head.weight * scale)
    new_head.bias.copy_(head.bias + head.weight @ shift)
    model.head, model.norm = new_head, nn.Identity()
    return 1


def fold_batchnorm(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Return ``model`` in eval mode with its BatchNorms folded into neighbouring convs / the classifier.

    Args:
        model: a model whose BatchNorms follow convs inside ``nn.Sequential`` containers (StarNet's
            ``ConvBN``, timm's ``ConvNormAct``-free designs) or precede an avg-pool + Linear head.
        inplace: modify ``model`` itself instead of a deep copy.

    Raises:
        ValueError: a BatchNorm remains that could not be folded (the model would be only partly folded).
    """
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    _fold_sequential_pairs(model)
    _fold_norm_into_head(model)
    left = [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise ValueError(f"could not fold {len(left)} BatchNorm(s), e.g. {', '.join(left[:3])}: no conv before them")
    return model
