"""Interaction primitives: the star fusion (and, later, quadratic convolutions)."""

from starquad.ops.star import ACT_PLACEMENTS, ACTIVATIONS, FUSIONS, StarFusion, create_act

__all__ = ["ACTIVATIONS", "ACT_PLACEMENTS", "FUSIONS", "StarFusion", "create_act"]
