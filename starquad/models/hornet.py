"""HorNet — "HorNet: Efficient High-Order Spatial Interactions with Recursive Gated Convolutions"
(Yongming Rao, Wenliang Zhao, Yansong Tang, Jie Zhou, Ser-Nam Lim, Jiwen Lu; NeurIPS 2022, arXiv 2207.14284).

QuadraNet's main peer, as :class:`~starquad.models.mixernet.MixerNet` with HorBlocks: gnConv
(:class:`~starquad.ops.GnConv`, 7×7, scale 1/3) of order 2, 3, 4, 5 in stages 1–4; depths [2, 3, 18, 2].
Because the norms, MLP and layer scales are the same code as QuadraNet's, a HorNet / QuadraNet
comparison isolates gnConv against the quadratic conv.

The authors' checkpoints (``downsample_layers.*``, ``stages.i.j.gnconv.{proj_in, dwconv, pws.k,
proj_out}``, ``pwconv1``/``pwconv2``, ``gamma1``/``gamma2``, ``norm``, ``head``) load through
:func:`starquad.load_checkpoint` (:func:`checkpoint_filter_fn` renames the keys).
"""

from typing import Any

import torch

from starquad.models.mixernet import MixerNet, convert_convnext_layout
from starquad.models.registry import build_staged_model, imagenet_cfg, register_model

__all__ = ["HorNet", "checkpoint_filter_fn", "default_cfgs"]

ORDERS = (2, 3, 4, 5)


class HorNet(MixerNet):
    """:class:`MixerNet` of HorBlocks with gnConv orders ``orders`` per stage (HorNet: 2, 3, 4, 5)."""

    def __init__(self, orders: tuple[int, ...] = ORDERS, **kwargs: Any):
        kwargs.setdefault("block", "hor")
        kwargs.setdefault("stage_block_kwargs", [dict(order=o) for o in orders])
        super().__init__(**kwargs)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The HorNet authors' layout → ours (``gnconv`` → ``mixer``, MLP names, downsamplers)."""
    return convert_convnext_layout(state_dict.get("state_dict", state_dict), mixer_name="gnconv")


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return imagenet_cfg(
        first_conv="stem.0",
        paper_ids="arXiv:2207.14284",
        paper_name="HorNet",
        origin_url="https://github.com/raoyongming/HorNet",
        **kwargs,
    )


# Paper figures (7×7 variants, ImageNet-1k 224²): top-1, params (M), MACs (M).
default_cfgs: dict[str, dict[str, Any]] = {
    "hornet_t": _cfg(paper_metrics=dict(top1=82.8, params_m=22.0, macs_m=4000.0)),
    "hornet_s": _cfg(paper_metrics=dict(top1=83.8, params_m=50.0, macs_m=8800.0)),
    "hornet_b": _cfg(paper_metrics=dict(top1=84.2, params_m=87.0, macs_m=15600.0)),
}


def _create_hornet(variant: str, **kwargs: Any) -> HorNet:
    return build_staged_model(HorNet, variant, default_cfgs[variant], **kwargs)


@register_model(also_in_timm=True)
def hornet_t(**kwargs: Any) -> HorNet:
    return _create_hornet("hornet_t", **dict(dict(base_dim=64, depths=(2, 3, 18, 2)), **kwargs))


@register_model(also_in_timm=True)
def hornet_s(**kwargs: Any) -> HorNet:
    return _create_hornet("hornet_s", **dict(dict(base_dim=96, depths=(2, 3, 18, 2)), **kwargs))


@register_model(also_in_timm=True)
def hornet_b(**kwargs: Any) -> HorNet:
    return _create_hornet("hornet_b", **dict(dict(base_dim=128, depths=(2, 3, 18, 2)), **kwargs))
