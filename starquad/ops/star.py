"""The star operation: fuse two linear branches by an element-wise product (or, for ablation, a sum).

``star(x1, x2) = act(x1) ⊙ x2`` with ``x1 = W1ᵀx + b1`` and ``x2 = W2ᵀx + b2`` computed by the caller
(1×1 convs in StarNet, one Linear split in two halves in DemoNet). With ``x̃ = [x, 1]`` each output
channel is ``Σ_i Σ_j w1_i w2_j x̃_i x̃_j``: a degree-2 polynomial in the inputs, i.e. an implicit feature
space of ``(d+2)(d+1)/2`` monomials computed at the cost of a ``d``-wide layer ("Rewrite the Stars",
Ma et al., CVPR 2024).

:class:`StarFusion` is the one home of this idea; StarNet, DemoNet and DemoNet-2D all use it. Its
options are the paper's ablations:

* ``fusion``: ``'star'`` (⊙, default) or ``'sum'`` (+);
* ``act_placement`` (Table 9): ``'one'`` (first branch, default), ``'both'``, ``'after'`` the product,
  ``'none'``;
* ``act`` (Table 17): ``'relu6'`` (StarNet's), ``'relu'``, ``'gelu'`` (DemoNet's), ``'leaky_relu'``,
  ``'hardswish'``, ``'identity'``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from starquad.errors import ConfigError

__all__ = ["ACTIVATIONS", "ACT_PLACEMENTS", "FUSIONS", "StarConv2d", "StarFusion", "create_act"]

FUSIONS = ("star", "sum")
ACT_PLACEMENTS = ("one", "both", "after", "none")
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu6": nn.ReLU6,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "hardswish": nn.Hardswish,
    "identity": nn.Identity,
}


def _check(value: str, allowed, what: str) -> str:
    if value not in allowed:
        raise ConfigError(f"unknown {what} '{value}'; choose one of: {', '.join(allowed)}")
    return value


def create_act(name: str) -> nn.Module:
    """An activation module by name (one of :data:`ACTIVATIONS`)."""
    return ACTIVATIONS[_check(name, ACTIVATIONS, "activation")]()


class StarFusion(nn.Module):
    """Fuse two branch outputs of equal shape: ``act(x1) ⊙ x2`` by default.

    Args:
        fusion: ``'star'`` (element-wise product) or ``'sum'``.
        act: activation name (see :data:`ACTIVATIONS`).
        act_placement: where the activation goes: ``'one'`` (on x1), ``'both'`` (on x1 and x2),
            ``'after'`` (on the fused result) or ``'none'``.
    """

    def __init__(self, fusion: str = "star", act: str = "relu6", act_placement: str = "one"):
        super().__init__()
        self.fusion = _check(fusion, FUSIONS, "fusion")
        self.act_placement = _check(act_placement, ACT_PLACEMENTS, "activation placement")
        self.act = create_act(act) if act_placement != "none" else nn.Identity()

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        if self.act_placement in ("one", "both"):
            x1 = self.act(x1)
        if self.act_placement == "both":
            x2 = self.act(x2)
        y = x1 * x2 if self.fusion == "star" else x1 + x2
        return self.act(y) if self.act_placement == "after" else y

    def extra_repr(self) -> str:
        return f"fusion={self.fusion!r}, act_placement={self.act_placement!r}"


class StarConv2d(nn.Module):
    """Depthwise star mixer ``act(conv_a(x)) ⊙ conv_b(x)``: two k×k depthwise branches fused by :class:`StarFusion`.

    The spatial counterpart of StarNet's channel-wise star, and the middle interaction order between a linear
    depthwise conv and the quadratic one (:class:`~starquad.ops.QuadraticConv2d`, which adds ``conv_c(x)``).
    Both branches are one conv with two outputs per channel; output channel ``2c`` is branch a of input channel
    ``c`` and ``2c + 1`` its branch b.

    Args:
        dim: channels (in = out; depthwise).
        kernel_size: odd kernel, 'same' padding.
        act: activation on branch a (StarNet's ReLU6 by default).
    """

    def __init__(self, dim: int, kernel_size: int = 7, act: str = "relu6"):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ConfigError(f"StarConv2d needs an odd kernel ('same' padding), got {kernel_size}")
        self.conv = nn.Conv2d(dim, 2 * dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.star = StarFusion("star", act, "one")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).unflatten(1, (-1, 2))  # (N, 2C, H, W) -> (N, C, 2, H, W): both branches of channel c
        return self.star(y[:, :, 0], y[:, :, 1])
