"""QuadraNet — "QuadraNet: Improving High-Order Neural Interaction Efficiency with Hardware-Aware Quadratic
Neural Networks" (Chenhui Xu, Fuxun Yu, Zirui Xu, Chenchen Liu, Jinjun Xiong, Xiang Chen; ASP-DAC 2024,
arXiv 2311.17956).

The ConvNeXt/HorNet macro-architecture (:class:`~starquad.models.mixernet.MixerNet`) with QuadraBlocks:
the spatial mixer is a 7×7 depthwise quadratic convolution ``conv_a(x) ⊙ conv_b(x) + conv_c(x)``
(:class:`~starquad.ops.QuadraticConv2d`), memory-efficient in training by default. Variants are named by
width and depths: C = 16 (xxs), 32 (xs), 64 (t), 96 (s), 128 (b); "36" = [3, 3, 27, 3], "25" = [2, 3, 18, 2].

The authors' checkpoints (``downsample_layers.*``, ``stages.i.j.QuadraConv.conv{1,2,3}.*``,
``pwconv1``/``pwconv2``, ``gamma1``/``gamma2``) load through :func:`starquad.load_checkpoint`:
:func:`checkpoint_filter_fn` maps their keys and merges the three branch convs into our one weight.
"""

import re
from typing import Any

import torch

from starquad.models.checkpoint import CheckpointError
from starquad.models.mixernet import MixerNet, convert_convnext_layout
from starquad.models.registry import build_staged_model, imagenet_cfg, register_model
from starquad.ops import merge_branches

__all__ = ["QuadraNet", "checkpoint_filter_fn", "default_cfgs"]


class QuadraNet(MixerNet):
    """:class:`MixerNet` of QuadraBlocks (``block='quadra'``); all other arguments as MixerNet."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("block", "quadra")
        super().__init__(**kwargs)


_BRANCH_KEY = re.compile(r"^(stages\.\d+\.blocks\.\d+\.mixer)\.conv([123])\.(weight|bias)$")


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The authors' layout → ours: keys renamed, ``QuadraConv.conv1/2/3`` merged (a, b, c; depthwise)."""
    state_dict = convert_convnext_layout(state_dict.get("state_dict", state_dict), mixer_name="QuadraConv")
    out, branches = {}, {}
    for key, value in state_dict.items():
        m = _BRANCH_KEY.match(key)
        if m is None:
            out[key] = value
        else:
            branches.setdefault(f"{m[1]}.{m[3]}", {})[int(m[2])] = value
    for key, parts in branches.items():
        if sorted(parts) != [1, 2, 3]:
            have = ", ".join(f"conv{i}" for i in sorted(parts))
            raise CheckpointError(f"{key}: the checkpoint has QuadraConv {have} but needs conv1, conv2 and conv3")
        out[key] = merge_branches([parts[1], parts[2], parts[3]], groups=parts[1].shape[0])
    return out


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return imagenet_cfg(
        first_conv="stem.0",
        paper_ids="arXiv:2311.17956",
        paper_name="QuadraNet",
        origin_url="https://github.com/miniHuiHui/QuadraNet",
        **kwargs,
    )


# Paper figures: params (M) and MACs (M) at 224², counting conv and linear layers only (``macs_count``).
default_cfgs: dict[str, dict[str, Any]] = {
    "quadranet_xxs36": _cfg(paper_metrics=dict(params_m=1.85, macs_m=320.0, macs_count="conv_linear")),
    "quadranet_xs36": _cfg(paper_metrics=dict(params_m=6.39, macs_m=1120.0, macs_count="conv_linear")),
    "quadranet_t36": _cfg(paper_metrics=dict(params_m=23.6, macs_m=4130.0, macs_count="conv_linear")),
    "quadranet_s36": _cfg(paper_metrics=dict(params_m=51.6, macs_m=9030.0, macs_count="conv_linear")),
    "quadranet_b36": _cfg(paper_metrics=dict(params_m=90.5, macs_m=15810.0, macs_count="conv_linear")),
    "quadranet_t25": _cfg(paper_metrics=dict(params_m=16.3, macs_m=2900.0, macs_count="conv_linear")),
    "quadranet_s25": _cfg(paper_metrics=dict(params_m=35.5, macs_m=6330.0, macs_count="conv_linear")),
    "quadranet_b25": _cfg(paper_metrics=dict(params_m=62.1, macs_m=11090.0, macs_count="conv_linear")),
}

DEPTHS_36, DEPTHS_25 = (3, 3, 27, 3), (2, 3, 18, 2)


def _create_quadranet(variant: str, **kwargs: Any) -> QuadraNet:
    return build_staged_model(QuadraNet, variant, default_cfgs[variant], **kwargs)


@register_model(also_in_timm=True)
def quadranet_xxs36(**kwargs: Any) -> QuadraNet:
    return _create_quadranet("quadranet_xxs36", **dict(dict(base_dim=16, depths=DEPTHS_36), **kwargs))


@register_model(also_in_timm=True)
def quadranet_xs36(**kwargs: Any) -> QuadraNet:
    return _create_quadranet("quadranet_xs36", **dict(dict(base_dim=32, depths=DEPTHS_36), **kwargs))


@register_model(also_in_timm=True)
def quadranet_t36(**kwargs: Any) -> QuadraNet:
    return _create_quadranet("quadranet_t36", **dict(dict(base_dim=64, depths=DEPTHS_36), **kwargs))


@register_model(also_in_timm=True)
def quadranet_s36(**kwargs: Any) -> QuadraNet:
    return _create_quadranet("quadranet_s36", **dict(dict(base_dim=96, depths=DEPTHS_36), **kwargs))


@register_model(also_in_timm=True)
def quadranet_b36(**kwargs: Any) -> QuadraNet:
    return _create_quadranet("quadranet_b36", **dict(dict(base_dim=128, depths=DEPTHS_36), **kwargs))


@register_model(also_in_timm=True)
def quadranet_t25(**kwargs: Any) -> QuadraNet:
    return _create_quadranet("quadranet_t25", **dict(dict(base_dim=64, depths=DEPTHS_25), **kwargs))


@register_model(also_in_timm=True)
def quadranet_s25(**kwargs: Any) -> QuadraNet:
    return _create_quadranet("quadranet_s25", **dict(dict(base_dim=96, depths=DEPTHS_25), **kwargs))


@register_model(also_in_timm=True)
def quadranet_b25(**kwargs: Any) -> QuadraNet:
    return _create_quadranet("quadranet_b25", **dict(dict(base_dim=128, depths=DEPTHS_25), **kwargs))
