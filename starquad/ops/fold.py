"""Weight algebra for the inference form: per-channel scales and shifts folded into the layer beside them.

A LayerNorm's affine and a layer scale γ are per-channel maps. Where such a map sits directly before or after
a linear layer (``nn.Linear``, ``nn.Conv2d``, the quadratic layers' branches), it folds into that layer's
weight and bias, so the inference graph carries one node fewer per map and the same outputs up to float
rounding:

* **after** a layer, ``s ⊙ (W x + b) = (s W) x + s b``: :func:`scale_rows_` (a per-output-row scale; the
  quadratic layers' callers give the rows of the branches the scale applies to, e.g. ``a`` and ``c`` of
  ``a ⊙ b + c``);
* **before** a layer, ``W (s ⊙ x + t) = (W s) x + W t``: :func:`fold_input_affine_`. The scale ``s`` folds
  into any of these layers (zero padding stays zero); the shift ``t`` only into a layer that never sees
  padding (a linear layer, an unpadded conv): a padded conv adds ``W t`` only where its window lies inside the
  map, so there the shift stays with the norm (as ``t / s``, :func:`fold_norm_into_`).

The layers' ``reparameterize()`` methods (timm's hook, called by :func:`timm.models.reparameterize_model` and
so by :func:`starquad.deploy.prepare_for_inference`) use these.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["drop_norm_affine_", "fold_input_affine_", "fold_norm_into_", "scale_rows_"]


def _groups(layer: nn.Module) -> int:
    return getattr(layer, "groups", 1)


def _pads(layer: nn.Module) -> bool:
    padding = getattr(layer, "padding", 0)
    return padding != 0 and any(p != 0 for p in (padding if isinstance(padding, (tuple, list)) else (padding,)))


@torch.no_grad()
def scale_rows_(layer: nn.Module, scale: torch.Tensor) -> None:
    """``layer``'s output row ``o`` multiplied by ``scale[o]`` (weight and bias), in place."""
    w = layer.weight
    if scale.numel() != w.shape[0]:
        raise ValueError(f"{type(layer).__name__} has {w.shape[0]} output rows, the scale {scale.numel()}")
    w.mul_(scale.to(w).view(-1, *([1] * (w.ndim - 1))))
    if layer.bias is not None:
        layer.bias.mul_(scale.to(w))


@torch.no_grad()
def fold_input_affine_(layer: nn.Module, scale: torch.Tensor | None, shift: torch.Tensor | None = None) -> None:
    """``layer(scale ⊙ x + shift)`` as ``layer'(x)``, in place (weights of shape ``(out, in / groups, …)``).

    Raises:
        ValueError: a shift for a padded layer (not exact at the borders), or a size mismatch.
    """
    w, groups = layer.weight, _groups(layer)
    per_group = w.shape[1]
    n_in = per_group * groups
    for name, v in (("scale", scale), ("shift", shift)):
        if v is not None and v.numel() != n_in:
            raise ValueError(f"{type(layer).__name__} has {n_in} input channels, the {name} {v.numel()}")
    if shift is not None:
        if _pads(layer):  # a caller that knows of other padding (windows) passes no shift
            raise ValueError(f"a shift does not fold into the padded {type(layer).__name__} (not exact at the borders)")
        if layer.bias is None:
            raise ValueError(f"a shift folds into a bias; {type(layer).__name__} has none")
        t = shift.to(w).view(groups, 1, per_group)  # group g's inputs
        rows = w.unflatten(0, (groups, -1)).flatten(3) if w.ndim > 2 else w.unflatten(0, (groups, -1))[..., None]
        layer.bias.add_((rows * t[..., None]).sum((2, 3)).flatten())  # W t, from the weight before scaling
    if scale is not None:
        s = scale.to(w).view(groups, 1, per_group).expand(groups, w.shape[0] // groups, per_group).flatten(0, 1)
        w.mul_(s.view(*s.shape, *([1] * (w.ndim - 2))))


def drop_norm_affine_(norm: nn.LayerNorm) -> None:
    """A LayerNorm without its affine: what is left once it is folded elsewhere."""
    norm.weight = norm.bias = None
    norm.elementwise_affine = False


@torch.no_grad()
def fold_norm_into_(norm: nn.LayerNorm, layer: nn.Module, padded: bool | None = None) -> None:
    """Fold a LayerNorm's affine ``w x̂ + b`` into the linear / conv layer that reads its output (see the module
    docstring). Where ``layer``'s input is padded (``padded=None``: read from ``layer.padding``) only the scale
    folds and the norm keeps the shift ``b / w``: ``W (w x̂ + b) = (W w)(x̂ + b / w)``; a scale with a zero in it
    (the shift could not be divided) is left as it is."""
    if norm.weight is None and norm.bias is None:
        return
    padded = _pads(layer) if padded is None else padded
    scale = norm.weight.detach().clone() if norm.weight is not None else None
    shift = norm.bias.detach().clone() if norm.bias is not None else None
    if padded and shift is not None:
        if scale is None:
            return  # a shift alone cannot move past the padding
        if bool((scale == 0).any()):
            return
        fold_input_affine_(layer, scale)
        norm.weight = None
        norm.bias.copy_(shift / scale)
        return
    fold_input_affine_(layer, scale, shift)
    drop_norm_affine_(norm)
