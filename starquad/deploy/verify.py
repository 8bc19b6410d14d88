"""Verification of an exported model that can see a missing branch.

An export is checked by running the exported file and the eager model on the same inputs. That check is blind
where a branch's output is scaled to almost nothing: QuadraNet, HorNet, ConvNeXt-style blocks and the search
spaces' blocks initialise their layer scales ``γ`` to 1e-6, so an untrained model whose exporter dropped a whole
MLP branch still agrees to ~1e-6 (the TorchScript ONNX exporter did exactly that, and the check passed). So
when a model's layer scales look untrained (every ``|γ|`` below :data:`TRIVIAL_SCALE`), the export is checked a
second time on a copy whose layer scales are drawn from U(0.5, 1): a dropped branch then moves the output by
about as much as the branch itself. A trained model (or a checkpoint's) is checked as it is.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from starquad.errors import StarquadError

__all__ = ["TRIVIAL_SCALE", "ExportError", "Verified", "hides_branches", "layer_scales", "verified_export",
           "with_visible_branches"]  # fmt: skip

TRIVIAL_SCALE = 1e-3
_LAYER_SCALE = re.compile(r"(^|\.)gamma\d*$")  # ours (gamma, gamma1, gamma2) and timm's LayerScale / ConvNeXt


class ExportError(StarquadError):
    """The export failed or the exported file does not reproduce the PyTorch model."""


def layer_scales(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The layer-scale parameters ``γ`` of ``model`` (1-D parameters named ``gamma``, ``gamma1``, …)."""
    return [(n, p) for n, p in model.named_parameters() if p.ndim == 1 and _LAYER_SCALE.search(n)]


def hides_branches(model: nn.Module) -> bool:
    """True when every layer scale is below :data:`TRIVIAL_SCALE`: an output comparison could not see a branch
    that went missing."""
    scales = layer_scales(model)
    return bool(scales) and all(float(p.detach().abs().max()) < TRIVIAL_SCALE for _, p in scales)


@torch.no_grad()
def with_visible_branches(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` (eval mode) whose layer scales are drawn from U(0.5, 1) and whose LayerNorm affines
    from U(0.5, 1.5) (scale) and U(-0.5, 0.5) (shift), as a trained model has them: the inference form folds
    both, and at their init values (1 and 0) a wrong fold would not show either."""
    probe = copy.deepcopy(model).eval()
    gen = torch.Generator().manual_seed(seed)
    for _, p in layer_scales(probe):
        p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) * 0.5 + 0.5)
    for m in probe.modules():
        if isinstance(m, nn.LayerNorm) and m.weight is not None:
            m.weight.copy_(torch.rand(m.weight.shape, generator=gen, dtype=m.weight.dtype) + 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen, dtype=m.bias.dtype) - 0.5)
    return probe


@dataclass(frozen=True)
class Verified:
    """An exported file's bytes, its largest difference from the model, and that of the probe when there was one."""

    data: bytes
    max_abs_diff: float
    probe_max_abs_diff: float | None


def _check(diff: float, atol: float, runtime: str, probe: bool) -> None:
    if not diff <= atol:  # also catches NaN
        what = (f" with layer scales set to 0.5–1 (the model's own are below {TRIVIAL_SCALE:g} and would hide a "
                "missing branch)") if probe else ""  # fmt: skip
        raise ExportError(f"{runtime} output differs from PyTorch's by {diff:.3g} > atol {atol:g}{what}; "
                          "nothing written")  # fmt: skip


def verified_export(model: nn.Module, export: Callable[[nn.Module], bytes],
                    difference: Callable[[bytes, nn.Module], float], atol: float,
                    runtime: str) -> Verified:  # fmt: skip
    """Export ``model`` and check the file within ``atol``; if its layer scales hide branches, check the same
    export of :func:`with_visible_branches` too.

    Args:
        model: the eager model (the reference).
        export: ``model -> file bytes`` (preparation for inference included).
        difference: ``(file bytes, reference model) -> largest absolute output difference``.
        atol: largest allowed difference, for both checks.
        runtime: what runs the file, for the error message.

    Raises:
        ExportError: either check failed (the caller writes nothing).
    """
    data = export(model)
    diff = difference(data, model)
    _check(diff, atol, runtime, probe=False)
    probe_diff = None
    if hides_branches(model):
        probe = with_visible_branches(model)
        probe_diff = difference(export(probe), probe)
        _check(probe_diff, atol, runtime, probe=True)
    return Verified(data, diff, probe_diff)
