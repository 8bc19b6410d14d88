"""StarNet — "Rewrite the Stars" (Xu Ma, Xiyang Dai, Yue Bai, Yizhou Wang, Yun Fu; CVPR 2024, arXiv 2403.19967).

A four-stage convolutional network whose blocks mix channels with the star operation,
``ReLU6(f1(x)) ⊙ f2(x)``. Numerically the same network as timm's ``starnet.py`` and the authors'
code (Apache-2.0), with the same state-dict keys, so their checkpoints load unchanged — plus the
ablations of the paper, which neither offers:

* ``fusion``: ``'star'``/``'sum'``, or one per stage (Table 7: e.g. ``('sum', 'sum', 'star', 'star')``);
* ``act_placement`` (Table 9) and ``act`` (Table 17), see :class:`starquad.ops.StarFusion`;
* ``block_design`` (Table 18): ``'I'`` (default, ``act(W1ᵀX) ⊙ W2ᵀX``) or ``'II'``, the one-branch form
  ``(W2ᵀ act(W1ᵀX)) ⊙ X`` — f1 expands to ``r·d``, the activation, then g projects back to ``d`` and
  the result is fused with the block's (dwconv-ed) input; there is no f2.

Initialisation (``weight_init``): ``'timm'`` (default) draws every conv and linear weight from
trunc-normal(0.02) and zeroes linear biases, as timm does. ``'authors'`` reproduces the released
code, whose init tests ``isinstance(m, nn.Linear or nn.Conv2d)`` — which is ``isinstance(m, nn.Linear)``
— so its convs silently keep PyTorch's default (Kaiming-uniform) init. Both set BatchNorm to (1, 0).
"""

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from timm.models import checkpoint_seq
from timm.models._features import feature_take_indices

from starquad.errors import ConfigError
from starquad.models.registry import build_staged_model, imagenet_cfg, register_model
from starquad.models.surface import ModelSurface, check_image_batch
from starquad.ops import DepthwiseConv2d, StarFusion, create_act

__all__ = ["ConvBN", "StarBlock", "StarNet", "checkpoint_filter_fn", "default_cfgs"]

BLOCK_DESIGNS = ("I", "II")


class ConvBN(nn.Sequential):
    """Conv2d (always with bias: the released checkpoints carry one even before BN) + optional BatchNorm."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
                 with_bn: bool = True):  # fmt: skip
        super().__init__()
        if groups == in_chs == out_chs > 1:  # depthwise: the fast CPU backward in training (same parameters)
            self.conv = DepthwiseConv2d(in_chs, kernel_size, stride)
        else:
            self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding=kernel_size // 2, groups=groups)
        if with_bn:
            self.bn = nn.BatchNorm2d(out_chs)


class StarBlock(nn.Module):
    """dwconv7×7+BN → star(f1, f2) → g (1×1 + BN) → dwconv7×7 → drop path → residual.

    Design ``'II'`` replaces the two expanding branches by ``g(act(f1(x))) ⊙ x`` (see the module doc).
    """

    def __init__(
        self,
        dim: int,
        mlp_ratio: int = 4,
        drop_path: float = 0.0,
        fusion: str = "star",
        act: str = "relu6",
        act_placement: str = "one",
        block_design: str = "I",
    ):
        super().__init__()
        if block_design not in BLOCK_DESIGNS:
            raise ConfigError(f"unknown block_design '{block_design}'; choose one of: {', '.join(BLOCK_DESIGNS)}")
        hidden = mlp_ratio * dim
        self.block_design = block_design
        self.dwconv = ConvBN(dim, dim, 7, groups=dim, with_bn=True)
        self.f1 = ConvBN(dim, hidden, 1, with_bn=False)
        self.act = nn.Identity()  # design II's activation; both branches of forward exist for TorchScript
        self.f2: nn.Module | None = None
        if block_design == "I":
            self.f2 = ConvBN(dim, hidden, 1, with_bn=False)
            self.star = StarFusion(fusion, act, act_placement)
        else:  # the fused pair is (g(act(f1 x)), x): the activation sits inside the one branch
            if act_placement != "one":
                raise ConfigError("block_design 'II' has its activation inside the branch; use act_placement='one'")
            self.act = create_act(act)
            self.star = StarFusion(fusion, act_placement="none")
        self.g = ConvBN(hidden, dim, 1, with_bn=True)
        self.dwconv2 = ConvBN(dim, dim, 7, groups=dim, with_bn=False)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.dwconv(x)
        if self.block_design == "I":
            if self.f2 is None:  # merged inference form: one conv, split after it
                x1, x2 = self.f1(x).chunk(2, dim=1)
            else:
                x1, x2 = self.f1(x), self.f2(x)
            x = self.g(self.star(x1, x2))
        else:
            x = self.star(self.g(self.act(self.f1(x))), x)
        x = self.dwconv2(x)
        return shortcut + self.drop_path(x)

    @torch.no_grad()
    def merge_branches(self) -> None:
        """Inference form for PyTorch (:func:`starquad.deploy.prepare_for_inference`): f1 and f2 become one
        1×1 conv with twice the outputs, split after it — one matrix product instead of two. Outputs are
        unchanged. State-dict keys change (``f2`` disappears), so save weights before, not after."""
        if self.block_design != "I" or self.f2 is None:
            return
        c1, c2 = self.f1.conv, self.f2.conv
        merged = nn.Conv2d(c1.in_channels, 2 * c1.out_channels, 1).to(c1.weight)
        merged.weight.copy_(torch.cat([c1.weight, c2.weight]))
        merged.bias.copy_(torch.cat([c1.bias, c2.bias]))
        self.f1.conv, self.f2 = merged, None


def _per_stage(value: str | Sequence[str], n: int, what: str) -> list[str]:
    values = [value] * n if isinstance(value, str) else list(value)
    if len(values) != n:
        raise ConfigError(f"{what} has {len(values)} entries but the model has {n} stages")
    return values


class StarNet(ModelSurface, nn.Module):
    """StarNet: stem (3×3 s2 conv-BN-ReLU6, 32 ch) → 4 stages (3×3 s2 conv-BN downsampler + StarBlocks)
    → BN → global average pool → Linear. Stage i has ``base_dim · 2**i`` channels.

    Args:
        base_dim: width of the first stage.
        depths: blocks per stage.
        mlp_ratio: expansion ``r`` of f1/f2.
        fusion: ``'star'``/``'sum'``, or a per-stage sequence (Table 7).
        act, act_placement, block_design: ablations (Tables 17, 9, 18).
        stem_chs: stem width (32 in every released variant).
        stem_stride: 2 in every released variant; 1 keeps twice the resolution for small images (28², 32²).
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth, linear in ``[0, drop_path_rate]`` over all blocks.
        num_classes, in_chans, global_pool: as in timm.
        weight_init: ``'timm'`` or ``'authors'`` (see the module docstring).
    """

    def __init__(
        self,
        base_dim: int = 32,
        depths: Sequence[int] = (3, 3, 12, 5),
        mlp_ratio: int = 4,
        fusion: str | Sequence[str] = "star",
        act: str = "relu6",
        act_placement: str = "one",
        block_design: str = "I",
        stem_chs: int = 32,
        stem_stride: int = 2,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        global_pool: str = "avg",
        weight_init: str = "timm",
    ):
        super().__init__()
        if weight_init not in ("timm", "authors"):
            raise ConfigError(f"unknown weight_init '{weight_init}'; choose 'timm' or 'authors'")
        fusions = _per_stage(fusion, len(depths), "fusion")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        self.stem = nn.Sequential(ConvBN(in_chans, stem_chs, 3, stride=stem_stride), nn.ReLU6())
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        stages, self.feature_info = [], []
        prev, cur = stem_chs, 0
        for i, depth in enumerate(depths):
            dim = base_dim * 2**i
            blocks = [
                StarBlock(dim, mlp_ratio, dpr[cur + j], fusions[i], act, act_placement, block_design)
                for j in range(depth)
            ]
            stages.append(nn.Sequential(ConvBN(prev, dim, 3, stride=2), *blocks))
            self.feature_info.append(dict(num_chs=dim, reduction=stem_stride * 2 ** (i + 1), module=f"stages.{i}"))
            prev, cur = dim, cur + depth
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = prev
        self.norm = nn.BatchNorm2d(prev)
        self.global_pool = self._new_pool(global_pool)
        self.head = self._new_head(num_classes)
        self.apply(self._init_timm if weight_init == "timm" else self._init_authors)

    @staticmethod
    def _init_timm(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            trunc_normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @staticmethod
    def _init_authors(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):  # convs keep PyTorch's default init, as in the released code
            trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return set()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(
            stem=r"^stem\.\d+",
            blocks=[(r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.(\d+)", None), (r"^norm", (99999,))],
        )

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            self.global_pool = self._new_pool(global_pool)
        self.head = self._new_head(num_classes)

    def _spatial_norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:  # fmt: skip
        take, max_index = feature_take_indices(len(self.stages), indices)
        if prune_norm or max_index < len(self.stages) - 1:  # the final norm belongs to the last stage only
            self.norm = nn.Identity()
        self.stages = self.stages[: max_index + 1]
        if prune_head:
            self.reset_classifier(0, "")
        return take

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.jit.is_tracing():
            check_image_batch(x, self.in_chans, type(self).__name__)
        x = self.stem(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.stages, x)  # one checkpoint per stage: saves memory, costs a recompute
        else:
            x = self.stages(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The authors' and timm's checkpoints already use our keys; unwrap ``{'state_dict': ...}`` only."""
    return state_dict.get("state_dict", state_dict)


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return imagenet_cfg(
        first_conv="stem.0.conv",
        paper_ids="arXiv:2403.19967",
        paper_name="Rewrite the Stars",
        origin_url="https://github.com/ma-xu/Rewrite-the-Stars",
        license="apache-2.0",
        **kwargs,
    )


# Paper figures (Table 6 and the small-model table): ImageNet-1k top-1, params (M), MACs (M) at 224²,
# and CPU latency (ms, ONNX Runtime on a Xeon E5-2680 v4, batch 1).
default_cfgs: dict[str, dict[str, Any]] = {
    "starnet_s050": _cfg(paper_metrics=dict(top1=55.7, params_m=0.54, macs_m=92.8, cpu_ms=1.3)),
    "starnet_s100": _cfg(paper_metrics=dict(top1=64.3, params_m=1.04, macs_m=187.1, cpu_ms=2.3)),
    "starnet_s150": _cfg(paper_metrics=dict(top1=68.0, params_m=1.56, macs_m=229.0, cpu_ms=2.6)),
    "starnet_s1": _cfg(paper_metrics=dict(top1=73.5, params_m=2.87, macs_m=425.0, cpu_ms=4.3)),
    "starnet_s2": _cfg(paper_metrics=dict(top1=74.8, params_m=3.68, macs_m=547.0, cpu_ms=4.5)),
    "starnet_s3": _cfg(paper_metrics=dict(top1=77.3, params_m=5.75, macs_m=757.0, cpu_ms=6.7)),
    "starnet_s4": _cfg(paper_metrics=dict(top1=78.4, params_m=7.48, macs_m=1075.0, cpu_ms=9.4)),
}


def _create_starnet(variant: str, **kwargs: Any) -> StarNet:
    return build_staged_model(StarNet, variant, default_cfgs[variant], **kwargs)


@register_model
def starnet_s050(**kwargs: Any) -> StarNet:
    model_args = dict(base_dim=16, depths=(1, 1, 3, 1), mlp_ratio=3)
    return _create_starnet("starnet_s050", **dict(model_args, **kwargs))


@register_model
def starnet_s100(**kwargs: Any) -> StarNet:
    model_args = dict(base_dim=20, depths=(1, 2, 4, 1), mlp_ratio=4)
    return _create_starnet("starnet_s100", **dict(model_args, **kwargs))


@register_model
def starnet_s150(**kwargs: Any) -> StarNet:
    model_args = dict(base_dim=24, depths=(1, 2, 4, 2), mlp_ratio=3)
    return _create_starnet("starnet_s150", **dict(model_args, **kwargs))


@register_model
def starnet_s1(**kwargs: Any) -> StarNet:
    model_args = dict(base_dim=24, depths=(2, 2, 8, 3))
    return _create_starnet("starnet_s1", **dict(model_args, **kwargs))


@register_model
def starnet_s2(**kwargs: Any) -> StarNet:
    model_args = dict(base_dim=32, depths=(1, 2, 6, 2))
    return _create_starnet("starnet_s2", **dict(model_args, **kwargs))


@register_model
def starnet_s3(**kwargs: Any) -> StarNet:
    model_args = dict(base_dim=32, depths=(2, 2, 8, 4))
    return _create_starnet("starnet_s3", **dict(model_args, **kwargs))


@register_model
def starnet_s4(**kwargs: Any) -> StarNet:
    model_args = dict(base_dim=32, depths=(3, 3, 12, 5))
    return _create_starnet("starnet_s4", **dict(model_args, **kwargs))
