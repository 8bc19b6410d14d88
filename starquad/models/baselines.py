"""timm baselines adapted to small images (28², 32²), for comparisons on Fashion-MNIST-sized data.

``resnet18_small`` is timm's ``resnet18`` with its 7×7 stride-2 stem conv replaced by a 3×3 stride-1 conv
(max-pool kept), the same change ``stem_stride=1`` makes to StarNet: at 28² input both networks then run
their four stages at 14², 7², 4² and 2². Everything else — blocks, widths, init, surface — is timm's.
"""

from __future__ import annotations

from typing import Any

import timm
import torch.nn as nn

from starquad.models.registry import imagenet_cfg, register_model

__all__ = ["default_cfgs", "small_stem"]

default_cfgs: dict[str, dict[str, Any]] = {
    "resnet18_small": imagenet_cfg(
        input_size=(3, 32, 32),
        pool_size=(1, 1),
        crop_pct=1.0,
        first_conv="conv1",
        classifier="fc",
        baseline_of="resnet18",
    ),
}


def small_stem(model: nn.Module) -> nn.Module:
    """Replace a timm ResNet's stem conv (``conv1``) by a 3×3 stride-1 conv of the same widths, in place.

    Works on the classifier and on its ``features_only`` wrapper; the feature reductions are halved to match.
    """
    old = model.conv1
    model.conv1 = nn.Conv2d(old.in_channels, old.out_channels, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")  # timm's ResNet init
    info = getattr(model.feature_info, "info", model.feature_info)
    for entry in info:
        entry["reduction"] = max(1, entry["reduction"] // 2)
    return model


@register_model
def resnet18_small(**kwargs: Any) -> nn.Module:
    """timm's resnet18 with a 3×3 stride-1 stem for 28²/32² inputs (see the module docstring)."""
    model = small_stem(timm.create_model("resnet18", pretrained=False, **kwargs))
    if not kwargs.get("features_only"):
        model.pretrained_cfg = model.default_cfg = {**model.pretrained_cfg, **default_cfgs["resnet18_small"]}
    return model
