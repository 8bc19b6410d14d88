"""Interaction primitives: the star fusion, quadratic / polynomial layers, gnConv, the lean MLP branch, and the
depthwise conv with a fast CPU backward."""

from starquad.ops.dwconv import DepthwiseConv2d
from starquad.ops.gnconv import GnConv
from starquad.ops.lean import NormMlp
from starquad.ops.quadratic import (
    PolynomialConv2d,
    QuadraticConv2d,
    QuadraticLinear,
    merge_branches,
    split_branches,
)
from starquad.ops.star import ACT_PLACEMENTS, ACTIVATIONS, FUSIONS, StarConv2d, StarFusion, create_act

__all__ = [
    "ACTIVATIONS",
    "ACT_PLACEMENTS",
    "FUSIONS",
    "DepthwiseConv2d",
    "GnConv",
    "NormMlp",
    "PolynomialConv2d",
    "QuadraticConv2d",
    "QuadraticLinear",
    "StarConv2d",
    "StarFusion",
    "create_act",
    "merge_branches",
    "split_branches",
]

# torch.fx (timm's feature extraction, torchvision's create_feature_extractor with timm's leaf list): these layers
# choose their backward at run time (autograd.Function vs plain ops), which symbolic tracing cannot follow, so
# they stay whole modules in a traced graph, as timm does with its own such layers. This adds to timm's no-trace
# set; it replaces nothing.
def _register_fx_leaves() -> None:
    from timm.layers import register_notrace_module

    for cls in (QuadraticConv2d, PolynomialConv2d, QuadraticLinear, NormMlp, DepthwiseConv2d):
        register_notrace_module(cls)


_register_fx_leaves()
