"""The MLP half of a ConvNeXt-style block, with a lean backward: ``γ ⊙ fc2(GELU(fc1(LN(x))))``.

Every block that starquad compares (QuadraBlock, HorBlock, ConvBlock, SkipBlock, SwinBlock) ends with
this branch, so it is the largest shared cost of activation memory. Written with plain autograd ops it
keeps, per pixel, ``x`` (LayerNorm input), ``LN(x)`` (fc1 input), ``h = fc1(·)`` (GELU input, 4C),
``GELU(h)`` (fc2 input, 4C) and ``fc2(·)`` (layer-scale input): 11 C floats. :class:`_LeanMlpFunction`
keeps only ``x`` and ``h`` (5 C) plus the LayerNorm statistics, and in backward

* recomputes ``LN(x)`` from ``x`` and the saved mean / rstd (element-wise, cheap),
* recomputes ``GELU(h)`` from ``h`` (element-wise, cheap),
* gets the layer-scale gradient without ``fc2``'s output: with ``M = Σ_rows g ⊗ GELU(h)`` (which
  fc2's weight gradient needs anyway), ``dγ = rowsum(W₂ ⊙ M) + b₂ ⊙ Σ g`` and ``dW₂ = γ ⊙ M``.

No matmul is recomputed, so the saving costs only element-wise work. ``lean=False`` runs the same
math with plain autograd (the reference, and for double backward).

On the CPU the branch runs in chunks of rows (forward, backward, and ``no_grad`` inference), so the
4C-wide intermediates of a chunk stay in cache (see ``_CHUNK_BYTES``); rows are independent, so
chunking changes no result beyond float rounding of the matmuls.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from starquad.ops.capture import capturing_graph
from starquad.ops.fold import fold_norm_into_, scale_rows_

__all__ = ["NormMlp"]

_aten = torch.ops.aten


# Rows per chunk on the CPU: the hidden activations of one chunk (rows × 4C floats) stay near 1 MiB, in
# cache, instead of streaming the whole 4C-wide tensor through memory between fc1, GELU and fc2. Measured
# 2.2× faster for the branch at 8×56²×64 (16.5 vs 36–40 ms, 2 threads). GPUs take it in one piece.
_CHUNK_BYTES = 2**20


def _chunks(rows: int, hidden: int, device: torch.device) -> list[slice]:
    step = rows if device.type != "cpu" else max(64, _CHUNK_BYTES // (4 * hidden))
    return [slice(s, min(s + step, rows)) for s in range(0, rows, step)]


def _as_rows(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N·H·W, C)``: a view for channels-last memory, else a copy."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])  # (N, C, H, W) -> (N, H, W, C) -> rows


def _from_rows(rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    N, C, H, W = like.shape
    return rows.view(N, H, W, C).permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W), channels-last memory


@torch.no_grad()
def _mlp_inference(x, ln_w, ln_b, w1, b1, w2, b2, gamma, eps):
    x2 = _as_rows(x)
    C = x2.shape[1]
    out = torch.empty_like(x2)
    for s in _chunks(x2.shape[0], w1.shape[0], x.device):
        z = F.layer_norm(x2[s], (C,), ln_w, ln_b, eps)
        torch.addmm(b2, F.gelu(F.linear(z, w1, b1)), w2.t(), out=out[s])
    return _from_rows(out.mul_(gamma) if gamma is not None else out, x)


class _LeanMlpFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, ln_w, ln_b, w1, b1, w2, b2, gamma, eps):
        x2 = _as_rows(x)
        rows, C = x2.shape
        h = x2.new_empty(rows, w1.shape[0])  # fc1 output: the only wide tensor kept for backward
        mean, rstd = x2.new_empty(rows, 1), x2.new_empty(rows, 1)
        out = torch.empty_like(x2)
        for s in _chunks(rows, w1.shape[0], x.device):
            z, mean[s], rstd[s] = _aten.native_layer_norm(x2[s], (C,), ln_w, ln_b, eps)
            torch.addmm(b1, z, w1.t(), out=h[s])
            torch.addmm(b2, F.gelu(h[s]), w2.t(), out=out[s])
        ctx.save_for_backward(x, mean, rstd, h, ln_w, ln_b, w1, w2, b2, gamma)
        return _from_rows(out.mul_(gamma), x)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, mean, rstd, h, ln_w, ln_b, w1, w2, b2, gamma = ctx.saved_tensors
        x2, g2 = _as_rows(x), _as_rows(grad)
        C = x2.shape[1]
        m = x2.new_zeros(C, h.shape[1])  # Σ_rows g ⊗ GELU(h), for dW2 and dγ
        d_w1, d_b1 = torch.zeros_like(w1), x2.new_zeros(h.shape[1])
        d_lnw, d_lnb = torch.zeros_like(ln_w), torch.zeros_like(ln_b)
        d_x2 = torch.empty_like(x2)
        g2_scaled = g2 * gamma
        for s in _chunks(x2.shape[0], h.shape[1], x.device):
            xs, hs, gs = x2[s], h[s], g2[s]
            z = (xs - mean[s]) * rstd[s] * ln_w + ln_b  # LN(x), recomputed from the saved statistics
            m.addmm_(gs.t(), F.gelu(hs))  # GELU(h), recomputed
            d_h = _aten.gelu_backward(g2_scaled[s] @ w2, hs)
            d_w1.addmm_(d_h.t(), z)
            d_b1 += d_h.sum(0)
            d_xs, d_lnw_s, d_lnb_s = _aten.native_layer_norm_backward(d_h @ w1, xs, (C,), mean[s], rstd[s], ln_w,
                                                                      ln_b, [True, True, True])  # fmt: skip
            d_x2[s] = d_xs
            d_lnw += d_lnw_s
            d_lnb += d_lnb_s
        g_sum = g2.sum(0)
        d_gamma = (w2 * m).sum(1) + b2 * g_sum
        return _from_rows(d_x2, x), d_lnw, d_lnb, d_w1, d_b1, gamma[:, None] * m, gamma * g_sum, d_gamma, None


class NormMlp(nn.Module):
    """``γ ⊙ fc2(GELU(fc1(LayerNorm(x))))`` on a ``(N, C, H, W)`` tensor, returned in the same layout.

    The residual add and drop-path stay with the caller. Runs channels-last internally; give it
    channels-last memory (``x.to(memory_format=torch.channels_last)``) and the permutes are free.

    Args:
        dim: channels ``C``.
        mlp_ratio: hidden width ``mlp_ratio · C``.
        ls_init: layer-scale initial value (``γ``); QuadraNet and HorNet use 1e-6.
        eps: LayerNorm epsilon.
        lean: use the memory-lean backward (see the module docstring).
    """

    def __init__(self, dim: int, mlp_ratio: float = 4.0, ls_init: float = 1e-6, eps: float = 1e-6, lean: bool = True):
        super().__init__()
        hidden = int(mlp_ratio * dim)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(ls_init)))
        self.lean = lean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():  # TorchScript: plain ops (no autograd.Function, no chunking)
            return self._plain_forward(x)
        return self._eager_forward(x)

    def _plain_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reference math in plain autograd ops (TorchScript, graph capture, ``lean=False``, the folded form)."""
        y = self.fc2(F.gelu(self.fc1(self.norm(x.permute(0, 2, 3, 1)))))  # (N, C, H, W) -> (N, H, W, C)
        if self.gamma is not None:
            y = y * self.gamma
        return y.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)

    @torch.jit.unused
    def reparameterize(self) -> None:
        """The inference form (timm's hook): the LayerNorm's affine folded into ``fc1``, ``γ`` into ``fc2``; the same
        outputs up to float rounding. Afterwards a training step runs the plain autograd ops (the lean backward needs
        the affine and ``γ``); inference keeps its chunked path."""
        if self.gamma is None:
            return
        fold_norm_into_(self.norm, self.fc1)
        scale_rows_(self.fc2, self.gamma.detach())
        self.gamma = None

    @torch.jit.unused
    def _eager_forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = self.fc1.in_features
        if x.ndim != 4 or x.shape[1] != dim:
            raise ValueError(f"NormMlp({dim}) expects (N, {dim}, H, W), got {tuple(x.shape)}")
        lean = self.lean and self.gamma is not None  # the lean backward needs the affine and γ (not folded)
        if capturing_graph() or (torch.is_grad_enabled() and not lean):  # see starquad.ops.capture
            return self._plain_forward(x)
        args = (x, self.norm.weight, self.norm.bias, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias,
                self.gamma, self.norm.eps)  # fmt: skip
        if not torch.is_grad_enabled():
            return _mlp_inference(*args)
        return _LeanMlpFunction.apply(*args)
