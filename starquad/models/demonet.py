"""DemoNet — the isotropic demonstration network of "Rewrite the Stars" (§3.3, Tables 2–4, Fig. 2).

A patchify stem, then ``depth`` identical blocks on channels-last tokens:
LayerNorm → 7×7 depthwise conv → Linear(d → 6d) → split → ``act(x1) op x2`` (op = ⊙ or +) →
Linear(3d → d) → layer scale (1e-6) → drop path → residual; head: token mean → LayerNorm → Linear.
``act='identity'`` is the activation-free variant (Table 4).

:class:`DemoNet2D` is the point-cloud version of Fig. 2 (the moons experiment): Linear stem 2 → 100,
four blocks without conv or layer scale, ReLU, final LayerNorm and Linear 100 → 2.
"""

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from timm.models import build_model_with_cfg, checkpoint_seq
from timm.models._features import feature_take_indices

from starquad.errors import ConfigError
from starquad.models.registry import imagenet_cfg, register_model, timm_pretrained_cfg
from starquad.models.surface import ModelSurface, check_image_batch
from starquad.ops import DepthwiseConv2d, StarFusion
from starquad.ops.fold import fold_norm_into_, scale_rows_

__all__ = ["DemoBlock", "DemoNet", "DemoNet2D", "default_cfgs"]


class DemoBlock(nn.Module):
    """One DemoNet block on channels-last tokens ``(N, ..., C)``.

    Args:
        dim: token width d.
        fusion: ``'star'`` or ``'sum'`` of the two 3d halves.
        act: activation on the first half (``'gelu'``; ``'identity'`` removes it).
        mlp_ratio: the Linear expands to ``2 · mlp_ratio · d`` and is split into two halves.
        spatial: a 7×7 depthwise conv after the norm (image tokens ``(N, H, W, C)``); False for points.
        layer_scale_init: initial layer scale γ, or None for no layer scale.
        drop_path: stochastic depth rate.
    """

    def __init__(self, dim: int, fusion: str = "star", act: str = "gelu", mlp_ratio: int = 3, spatial: bool = True,
                 layer_scale_init: float | None = 1e-6, drop_path: float = 0.0):  # fmt: skip
        super().__init__()
        hidden = mlp_ratio * dim
        self.norm = nn.LayerNorm(dim)
        self.dwconv = DepthwiseConv2d(dim, 7) if spatial else None
        self.f = nn.Linear(dim, 2 * hidden)
        self.star = StarFusion(fusion, act, "one")
        self.g = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale_init)) if layer_scale_init is not None else None
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    @torch.jit.unused
    def reparameterize(self) -> None:
        """The inference form (timm's hook): the norm's scale folded into the layer after it (and its shift, where
        that is the Linear ``f``: the padded depthwise conv keeps it with the norm), ``γ`` into ``g``."""
        fold_norm_into_(self.norm, self.dwconv if self.dwconv is not None else self.f)  # once: then no affine left
        if self.gamma is not None:
            scale_rows_(self.g, self.gamma.detach())
            self.gamma = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm(x)
        if self.dwconv is not None:
            x = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (N, H, W, C) -> (N, C, H, W) -> back
        x1, x2 = self.f(x).chunk(2, dim=-1)
        x = self.g(self.star(x1, x2))
        if self.gamma is not None:
            x = x * self.gamma
        return shortcut + self.drop_path(x)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class DemoNet(ModelSurface, nn.Module):
    """Isotropic DemoNet (see the module docstring).

    Args:
        depth: number of blocks. width: token width d.
        fusion: ``'star'`` or ``'sum'``. act: activation on the first half (``'identity'`` = none).
        patch_size: stem conv kernel and stride (16 at 224²; 4 or 2 for 28–32² inputs).
        drop_rate, drop_path_rate, num_classes, in_chans, global_pool: as in timm.
    """

    def __init__(
        self,
        depth: int = 12,
        width: int = 192,
        fusion: str = "star",
        act: str = "gelu",
        patch_size: int = 16,
        layer_scale_init: float = 1e-6,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        global_pool: str = "avg",
    ):
        super().__init__()
        if global_pool not in ("avg", ""):
            raise ConfigError(f"DemoNet pools tokens by their mean ('avg') or not at all (''), not '{global_pool}'")
        self.num_classes, self.in_chans, self.drop_rate = num_classes, in_chans, drop_rate
        self.global_pool = global_pool
        self.grad_checkpointing = False
        self.num_features = self.head_hidden_size = width
        self.stem = nn.Conv2d(in_chans, width, patch_size, stride=patch_size)
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.Sequential(
            *[DemoBlock(width, fusion, act, layer_scale_init=layer_scale_init, drop_path=dpr[i]) for i in range(depth)]
        )
        self.feature_info = [dict(num_chs=width, reduction=patch_size, module=f"blocks.{i}") for i in range(depth)]
        self.norm = nn.LayerNorm(width)
        self.head = self._new_head(num_classes)
        self.apply(_init_weights)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {n for n, _ in self.named_parameters() if n.endswith("gamma")}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^stem", blocks=[(r"^blocks\.(\d+)", None), (r"^norm", (99999,))])

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            self.global_pool = global_pool
        self.head = self._new_head(num_classes)

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.jit.is_tracing():
            check_image_batch(x, self.in_chans, type(self).__name__)
        return self.stem(x).permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Block outputs (``indices`` as in timm), NCHW by default or NHWC (channels-last tokens)."""
        if output_fmt not in ("NCHW", "NHWC"):
            raise ConfigError(f"output_fmt must be 'NCHW' or 'NHWC', not '{output_fmt}'")
        take, max_index = feature_take_indices(len(self.blocks), indices)
        blocks = self.blocks[: max_index + 1] if stop_early else self.blocks
        intermediates = []
        x = self._tokens(x)
        for i, block in enumerate(blocks):
            x = block(x)
            if i in take:
                y = self.norm(x) if norm else x
                intermediates.append(y.permute(0, 3, 1, 2) if output_fmt == "NCHW" else y)  # (N, H, W, C) -> NCHW
        if intermediates_only:
            return intermediates
        return x.permute(0, 3, 1, 2), intermediates  # final map as forward_features gives it: (N, C, H, W)

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:  # fmt: skip
        take, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[: max_index + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take

    @torch.jit.unused
    def reparameterize(self) -> None:
        """The inference form of the head (:func:`starquad.deploy.prepare_for_inference` calls this; the blocks have
        their own): the final LayerNorm's affine folded into the classifier; logits unchanged up to float rounding."""
        if isinstance(self.head, nn.Linear):
            fold_norm_into_(self.norm, self.head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The token map ``(N, C, H, W)`` after the last block, un-normalised (the head normalises after pooling)."""
        x = self._tokens(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.blocks, x)
        else:
            x = self.blocks(x)
        return x.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W): timm's feature layout

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The paper's head: mean over tokens → LayerNorm → Linear (without pooling: LayerNorm per token, 4-D out)."""
        if self.global_pool == "avg":
            x = self.norm(x.mean(dim=(2, 3)))
        else:
            x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # LayerNorm over C of every token
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class DemoNet2D(nn.Module):
    """DemoNet for 2-D points (the paper's moons figure): Linear stem, blocks without conv or layer scale.

    Args:
        fusion: ``'star'`` or ``'sum'``. act: ``'relu'`` in the paper; ``'identity'`` removes it.
        width, depth, in_features, num_classes: 100, 4, 2, 2 in the paper.
    """

    def __init__(self, fusion: str = "star", act: str = "relu", width: int = 100, depth: int = 4,
                 in_features: int = 2, num_classes: int = 2):  # fmt: skip
        super().__init__()
        self.num_classes = num_classes
        self.num_features = width
        self.stem = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(
            *[DemoBlock(width, fusion, act, spatial=False, layer_scale_init=None) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)
        self.apply(_init_weights)

    @torch.jit.unused
    def reparameterize(self) -> None:
        """The inference form of the head: the final LayerNorm's affine folded into the classifier."""
        fold_norm_into_(self.norm, self.head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blocks(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return imagenet_cfg(
        pool_size=(14, 14),
        first_conv="stem",
        paper_ids="arXiv:2403.19967",
        paper_name="Rewrite the Stars",
        license="apache-2.0",
        **kwargs,
    )


# Paper figures (Table 2, depth 12): ImageNet-1k top-1 of the star / sum variants, params (M).
default_cfgs: dict[str, dict[str, Any]] = {
    "demonet_d12_w96": _cfg(paper_metrics=dict(top1=57.6, top1_sum=51.1, params_m=1.24)),
    "demonet_d12_w192": _cfg(paper_metrics=dict(top1=71.7, top1_sum=66.2, params_m=4.46)),
    "demonet_d12_w288": _cfg(paper_metrics=dict(top1=76.1, top1_sum=72.5, params_m=9.68)),
    "demonet_2d": {"num_classes": 2, "input_size": (2,), "first_conv": "stem", "classifier": "head",
                   "paper_ids": "arXiv:2403.19967"},
}  # fmt: skip


def _create_demonet(variant: str, **kwargs: Any) -> DemoNet:
    return build_model_with_cfg(
        DemoNet,
        variant,
        pretrained=False,
        pretrained_cfg=timm_pretrained_cfg(default_cfgs[variant]),
        feature_cfg=dict(feature_cls="getter", out_indices=(-4, -3, -2, -1)),  # the last 4 blocks, as timm's ViTs
        **kwargs,
    )


@register_model(also_in_timm=True)
def demonet_d12_w96(**kwargs: Any) -> DemoNet:
    return _create_demonet("demonet_d12_w96", **dict(dict(depth=12, width=96), **kwargs))


@register_model(also_in_timm=True)
def demonet_d12_w192(**kwargs: Any) -> DemoNet:
    return _create_demonet("demonet_d12_w192", **dict(dict(depth=12, width=192), **kwargs))


@register_model(also_in_timm=True)
def demonet_d12_w288(**kwargs: Any) -> DemoNet:
    return _create_demonet("demonet_d12_w288", **dict(dict(depth=12, width=288), **kwargs))


@register_model  # not an image model: kept out of timm's registry (its tests assume images)
def demonet_2d(**kwargs: Any) -> DemoNet2D:
    model = DemoNet2D(**kwargs)
    model.pretrained_cfg = model.default_cfg = dict(default_cfgs["demonet_2d"])
    return model
