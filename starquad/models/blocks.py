"""One block skeleton, five spatial mixers: QuadraBlock and the peers it is measured against.

Every block is the ConvNeXt / HorNet / QuadraNet layout

    x = x + DropPath(γ₁ · mixer(LN_cf(x)))        (skipped for SkipBlock)
    x = x + DropPath(γ₂ · MLP(LN_cl(x)))           MLP = Linear(d → 4d) → GELU → Linear(4d → d)

with LayerNorm eps 1e-6 and layer scale γ initialised to 1e-6. ``channel_mixer='quadratic'`` makes the
MLP's two 1×1 layers quadratic neurons too (:class:`QuadraticMlp`, QuadraNet Table V). The norms, the MLP half
(:class:`starquad.ops.lean.NormMlp`, memory-lean by default) and the layer scales are the same code
for every block type, so a comparison between block types isolates the spatial mixer:

=========  ===================================================================================
``quadra``  QuadraBlock: depthwise :class:`~starquad.ops.QuadraticConv2d` (k×k, 3 branches)
``hor``     HorBlock: :class:`~starquad.ops.GnConv` of order ``order`` (HorNet)
``conv``    ConvBlock: one k×k depthwise conv (the linear baseline; ConvNeXt's block)
``star``    StarBlock (spatial): depthwise :class:`~starquad.ops.StarConv2d`, ``act(conv_a x) ⊙ conv_b x``
``skip``    SkipBlock: no spatial mixer at all (only the MLP half)
``swin``    SwinBlock: timm's window attention (windows of ``window_size``, head dim 32, no shift)
=========  ===================================================================================

The inference form (``reparameterize()``, :func:`starquad.deploy.prepare_for_inference`) folds ``γ₁`` and
``norm1``'s scale into the mixer, and ``γ₂`` and the MLP norm's affine into its linear layers. The channels-first
``norm1`` stays a LayerNorm between two transposes: written without them (mean and variance over the channel
axis) it made QuadraNet-T25 slower in ONNX Runtime, 68.4 against 60.9 ms (224², batch 1, 2 threads, 2-core AMD
EPYC, 2026-12-07), as did the MLP as two 1×1 convs on channels-first maps (68.3 ms) that removed every transpose.
"""

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, LayerNorm2d
from timm.models.swin_transformer import WindowAttention, window_partition, window_reverse

from starquad.errors import ConfigError
from starquad.ops import (
    DepthwiseConv2d,
    GnConv,
    NormMlp,
    QuadraticConv2d,
    QuadraticLinear,
    StarConv2d,
    merge_branches,
)
from starquad.ops.fold import fold_norm_into_, scale_rows_

__all__ = ["BLOCK_TYPES", "CHANNEL_MIXERS", "MixerBlock", "QuadraticMlp", "WindowAttention2d", "create_mixer"]

BLOCK_TYPES = ("quadra", "hor", "conv", "star", "skip", "swin")
CHANNEL_MIXERS = ("linear", "quadratic")


class QuadraticMlp(nn.Module):
    """The MLP half with quadratic neurons in the channel mixer: ``γ ⊙ Q₂(GELU(Q₁(LN(x))))``, each ``Q`` a
    :class:`~starquad.ops.QuadraticLinear` (3× the weights of a linear 1×1 layer). Same interface as
    :class:`~starquad.ops.NormMlp`: ``(N, C, H, W)`` in and out, the residual add stays with the caller."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, ls_init: float = 1e-6, eps: float = 1e-6):
        super().__init__()
        hidden = int(mlp_ratio * dim)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.fc1 = QuadraticLinear(dim, hidden)
        self.fc2 = QuadraticLinear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(ls_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc2(F.gelu(self.fc1(self.norm(x.permute(0, 2, 3, 1)))))  # (N, C, H, W) -> (N, H, W, C)
        if self.gamma is not None:
            y = y * self.gamma
        return y.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)

    @torch.jit.unused
    def reparameterize(self) -> None:
        """The inference form: the LayerNorm's affine folded into ``fc1``, ``γ`` into ``fc2``'s branches a and c."""
        if self.gamma is None:
            return
        fold_norm_into_(self.norm, self.fc1)
        g = self.gamma.detach()
        scale_rows_(self.fc2, merge_branches([g, torch.ones_like(g), g]))  # γ(a ⊙ b + c) = (γa) ⊙ b + γc
        self.gamma = None


class WindowAttention2d(nn.Module):
    """timm's Swin window attention on a ``(N, C, H, W)`` map (padded to whole windows, no shift)."""

    def __init__(self, dim: int, window_size: int = 7, head_dim: int = 32):
        super().__init__()
        if dim % head_dim:
            raise ConfigError(f"window attention needs dim divisible by head_dim={head_dim}, got {dim}")
        self.window_size = (window_size, window_size)
        self.attn = WindowAttention(dim, num_heads=dim // head_dim, window_size=window_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, C, H, W = x.shape
        wh, ww = self.window_size
        x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        pad_h, pad_w = (wh - H % wh) % wh, (ww - W % ww) % ww
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        Hp, Wp = H + pad_h, W + pad_w
        windows = window_partition(x, self.window_size).view(-1, wh * ww, C)  # (N·windows, wh·ww, C)
        windows = self.attn(windows).view(-1, wh, ww, C)
        x = window_reverse(windows, self.window_size, Hp, Wp)[:, :H, :W]
        return x.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)


def create_mixer(kind: str, dim: int, kernel_size: int = 7, order: int = 3, memory_efficient: bool = True,
                 window_size: int = 7, gn_scale: float = 1.0 / 3.0) -> nn.Module | None:  # fmt: skip
    """The spatial mixer of a block type (see the module docstring); ``None`` for ``'skip'``."""
    if kind == "quadra":
        return QuadraticConv2d(dim, dim, kernel_size, groups=dim, memory_efficient=memory_efficient)
    if kind == "hor":
        return GnConv(dim, order, kernel_size, gn_scale)
    if kind == "conv":
        return DepthwiseConv2d(dim, kernel_size)
    if kind == "star":
        return StarConv2d(dim, kernel_size)
    if kind == "swin":
        return WindowAttention2d(dim, window_size)
    if kind == "skip":
        return None
    raise ConfigError(f"unknown block type '{kind}'; choose one of: {', '.join(BLOCK_TYPES)}")


def _mixer_ends(mixer: nn.Module, gamma: torch.Tensor) -> tuple[nn.Module, bool, nn.Module, torch.Tensor]:
    """Where a mixer's input affine and its output scale ``γ`` fold: ``(first layer, whether that layer sees
    padding, last layer, the scale of each of the last layer's output rows)``."""
    ones = torch.ones_like(gamma)
    if isinstance(mixer, QuadraticConv2d):  # γ(a ⊙ b + c) = (γa) ⊙ b + γc
        return mixer, True, mixer, merge_branches([gamma, ones, gamma], groups=mixer.groups)
    if isinstance(mixer, StarConv2d):  # γ(act(a) ⊙ b) = act(a) ⊙ (γb); rows 2c, 2c + 1 are a, b of channel c
        return mixer.conv, True, mixer.conv, torch.stack([ones, gamma], 1).flatten()
    if isinstance(mixer, GnConv):
        return mixer.proj_in, False, mixer.proj_out, gamma
    if isinstance(mixer, WindowAttention2d):  # windows are zero-padded after the norm: its shift stays
        return mixer.attn.qkv, True, mixer.attn.proj, gamma
    if isinstance(mixer, nn.Conv2d):  # DepthwiseConv2d
        return mixer, True, mixer, gamma
    raise TypeError(f"no inference form for the mixer {type(mixer).__name__}")


class MixerBlock(nn.Module):
    """The shared block skeleton (module docstring) around the mixer of ``kind``.

    Args:
        dim: channels.
        kind: ``'quadra'``, ``'hor'``, ``'conv'``, ``'star'``, ``'skip'`` or ``'swin'``.
        mlp_ratio: MLP expansion.
        drop_path: stochastic-depth rate of this block.
        ls_init: layer-scale initial value.
        lean: memory-lean MLP backward (:class:`~starquad.ops.lean.NormMlp`).
        channel_mixer: ``'linear'`` (the MLP of 1×1 layers) or ``'quadratic'`` (:class:`QuadraticMlp`).
        **mixer_kwargs: ``kernel_size``, ``order``, ``memory_efficient``, ``window_size``, ``gn_scale``.
    """

    def __init__(self, dim: int, kind: str = "quadra", mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 ls_init: float = 1e-6, lean: bool = True, channel_mixer: str = "linear",
                 **mixer_kwargs: Any):  # fmt: skip
        super().__init__()
        if channel_mixer not in CHANNEL_MIXERS:
            raise ConfigError(f"unknown channel_mixer '{channel_mixer}'; choose one of: {', '.join(CHANNEL_MIXERS)}")
        self.kind = kind
        mixer = create_mixer(kind, dim, **mixer_kwargs)
        if mixer is not None:
            self.norm1 = LayerNorm2d(dim, eps=1e-6)
            self.mixer = mixer
            self.gamma1 = nn.Parameter(torch.full((dim,), float(ls_init)))
        else:
            self.mixer = None
        self.mlp = (NormMlp(dim, mlp_ratio, ls_init, lean=lean) if channel_mixer == "linear"
                    else QuadraticMlp(dim, mlp_ratio, ls_init))  # fmt: skip
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    @torch.jit.unused
    def reparameterize(self) -> None:
        """The inference form (timm's hook; the MLP half has its own): ``norm1``'s scale (and its shift, where the
        mixer's first layer sees no padding) folded into the mixer's first layer, ``γ₁`` into its last. The same
        outputs up to float rounding."""
        if self.mixer is None or self.gamma1 is None:
            return
        first, padded, last, rows = _mixer_ends(self.mixer, self.gamma1.detach())
        fold_norm_into_(self.norm1, first, padded)
        scale_rows_(last, rows)
        self.gamma1 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mixer is not None:
            y = self.mixer(self.norm1(x))
            if self.gamma1 is not None:
                y = y * self.gamma1.view(1, -1, 1, 1)
            x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(x))
