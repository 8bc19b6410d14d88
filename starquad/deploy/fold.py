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

from starquad.ops import DepthwiseConv2d

__all__ = ["INFERENCE_FORM", "fold_batchnorm", "prepare_for_inference"]

# The version of what prepare_for_inference makes of a model: latency measured on an older form (a cached latency
# table) is not this one's. 2: layer scales and LayerNorm affines folded.
INFERENCE_FORM = 2


def _fold_sequential_pairs(module: nn.Module) -> int:
    """Fold every Conv2d → BatchNorm2d pair that sits consecutively in an ``nn.Sequential``."""
    folded = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for prev, name in itertools.pairwise(names):
            conv, bn = seq._modules[prev], seq._modules[name]
            # exact types: a BatchNorm2d subclass (timm's BatchNormAct2d) may carry an activation; a conv subclass
            # may compute something else, except ours that only trains faster (DepthwiseConv2d)
            plain_conv = type(conv) is nn.Conv2d or type(conv) is DepthwiseConv2d
            if plain_conv and type(bn) is nn.BatchNorm2d and bn.track_running_stats:
                seq._modules[prev] = fuse_conv_bn_eval(conv, bn)
                seq._modules[name] = nn.Identity()
                folded += 1
    return folded


@torch.no_grad()
def _fold_norm_into_head(model: nn.Module) -> int:
    """Fold a timm-style ``model.norm`` BatchNorm2d → average pool → Linear ``model.head``."""
    norm, head = getattr(model, "norm", None), getattr(model, "head", None)
    pool_type = getattr(getattr(model, "global_pool", None), "pool_type", None)
    if not (type(norm) is nn.BatchNorm2d and isinstance(head, nn.Linear) and pool_type == "avg"):
        return 0
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    new_head = nn.Linear(head.in_features, head.out_features).to(head.weight)
    new_head.weight.copy_(head.weight * scale)
    new_head.bias.copy_(head.bias + head.weight @ shift)
    model.head, model.norm = new_head, nn.Identity()
    return 1


def fold_batchnorm(model: nn.Module, inplace: bool = False, strict: bool = True) -> nn.Module:
    """Return ``model`` in eval mode with its BatchNorms folded into neighbouring convs / the classifier.

    Args:
        model: a model whose BatchNorms follow convs inside ``nn.Sequential`` containers (StarNet's
            ``ConvBN``, timm's ``ConvNormAct``-free designs) or precede an avg-pool + Linear head.
        inplace: modify ``model`` itself instead of a deep copy.
        strict: raise if a BatchNorm is left; with ``strict=False`` fold what can be folded.

    Raises:
        ValueError: (strict) a BatchNorm remains that could not be folded (the model would be only partly folded).
    """
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    _fold_sequential_pairs(model)
    _fold_norm_into_head(model)
    left = [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left and strict:
        raise ValueError(f"could not fold {len(left)} BatchNorm(s), e.g. {', '.join(left[:3])}: no conv before them")
    return model


def prepare_for_inference(model: nn.Module, inplace: bool = False, merge_branches: bool = True) -> nn.Module:
    """The inference form of any model: eval mode, timm's re-parameterisation, then BatchNorm folding.

    :func:`timm.models.reparameterize_model` calls every submodule's ``fuse()`` / ``reparameterize()`` /
    ``switch_to_deploy()`` (MobileOne, FastViT, RepVGG; ours fold each layer scale γ and LayerNorm affine into
    the linear or conv layer beside it, :mod:`starquad.ops.fold`), and the model's own ``reparameterize()`` (the
    head's norm); then the Conv→BatchNorm pairs left anywhere are folded (non-strict: a BatchNorm without a
    conv before it stays). With ``merge_branches`` the modules
    that offer ``merge_branches()`` (StarNet's block: f1 and f2 as one conv) use it — faster in PyTorch
    (one GEMM instead of two), slower in ONNX Runtime, whose blocked NCHWc layout pays more for the split
    than it saves, so ONNX export leaves the branches apart. Outputs are unchanged up to float rounding.
    """
    from timm.models import reparameterize_model

    model = model if inplace else copy.deepcopy(model)
    model.eval()
    reparameterize_model(model, inplace=True)  # the submodules' hooks
    if callable(getattr(model, "reparameterize", None)):
        model.reparameterize()
    if merge_branches:
        for module in list(model.modules()):
            if callable(getattr(module, "merge_branches", None)):
                module.merge_branches()
    return fold_batchnorm(model, inplace=True, strict=False)
