"""gnConv, the recursive gated convolution of HorNet (Rao et al., NeurIPS 2022, arXiv 2207.14284).

The high-order interaction QuadraNet is measured against. With ``dims = [d/2^(n-1), …, d/2, d]``:
``proj_in`` (1×1, d → 2d) gives ``p₀`` (``dims[0]`` channels) and ``q`` (``Σ dims``); one 7×7 depthwise
conv over ``q``, scaled by ``s`` (1/3 in HorNet), is split into ``q₀ … qₙ₋₁`` by ``dims``; then
``x = p₀ ⊙ q₀`` and ``x = pwᵢ(x) ⊙ qᵢ₊₁`` (1×1 convs ``pwᵢ``: dims[i] → dims[i+1]); ``proj_out`` (1×1).
Submodule names follow the HorNet code (``proj_in``, ``dwconv``, ``pws.i``, ``proj_out``), so its
checkpoints map onto ours by prefix only.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from starquad.errors import ConfigError

__all__ = ["GnConv"]


class GnConv(nn.Module):
    """Recursive gated convolution of order ``order`` (2–5 in HorNet) on ``(N, dim, H, W)``.

    Args:
        dim: channels; must be divisible by ``2 ** (order - 1)``.
        order: interaction order ``n``.
        kernel_size: depthwise kernel (7).
        scale: the factor ``s`` on the depthwise output (HorNet: 1/3).
    """

    def __init__(self, dim: int, order: int = 3, kernel_size: int = 7, scale: float = 1.0 / 3.0):
        super().__init__()
        if order < 1 or dim % 2 ** (order - 1):
            raise ConfigError(f"gnConv order {order} needs dim divisible by {2 ** (order - 1)}, got dim={dim}")
        self.order, self.scale = order, scale
        self.dims: list[int] = [dim // 2**i for i in range(order)][::-1]
        width = sum(self.dims)
        self.proj_in = nn.Conv2d(dim, 2 * dim, 1)
        self.dwconv = nn.Conv2d(width, width, kernel_size, padding=kernel_size // 2, groups=width)
        self.pws = nn.ModuleList(nn.Conv2d(self.dims[i], self.dims[i + 1], 1) for i in range(order - 1))
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p0, q = self.proj_in(x).split((self.dims[0], sum(self.dims)), dim=1)
        gates = (self.dwconv(q) * self.scale).split(self.dims, dim=1)
        x = p0 * gates[0]
        for i, pw in enumerate(self.pws):  # indexed, not zipped: TorchScript and torch.fx both follow this loop
            x = pw(x) * gates[i + 1]
        return self.proj_out(x)

    def extra_repr(self) -> str:
        return f"order={self.order}, dims={self.dims}, scale={self.scale:.4f}"
