"""Interaction primitives: the star fusion, quadratic / polynomial layers, gnConv, and the lean MLP branch."""

from starquad.ops.gnconv import GnConv
from starquad.ops.lean import NormMlp
from starquad.ops.quadratic import (
    PolynomialConv2d,
    QuadraticConv2d,
    QuadraticLinear,
    merge_branches,
    split_branches,
)
from starquad.ops.star import ACT_PLACEMENTS, ACTIVATIONS, FUSIONS, StarFusion, create_act

__all__ = [
    "ACTIVATIONS",
    "ACT_PLACEMENTS",
    "FUSIONS",
    "GnConv",
    "NormMlp",
    "PolynomialConv2d",
    "QuadraticConv2d",
    "QuadraticLinear",
    "StarFusion",
    "create_act",
    "merge_branches",
    "split_branches",
]
