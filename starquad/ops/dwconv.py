"""A fast CPU backward for depthwise convolutions (groups = channels), as a C++ extension built on this machine.

PyTorch's CPU weight gradient of a depthwise conv is far slower than its forward on the shapes these networks
use (issue #16: 12–14 ms per 64 channels at 8×56², k 7, against 1.4 ms forward), while its input gradient is
as fast as the forward. ``csrc/dwconv.cpp`` computes the weight gradient over a channels-last layout: a task
owns one SIMD vector of channels and keeps a block of kernel rows' accumulators in registers while it streams
over the output pixels (float32, kernels 3/5/7/9; a plain vectorised loop otherwise). The input gradient stays
PyTorch's. (Taking the three branches of a quadratic conv in one pass over the input was tried, and did not
pay: the accumulators of three branches no longer fit the registers.)

The extension is compiled once per machine and source (``make setup`` does it; otherwise the first use does)
into ``ext/`` of starquad's cache folder (:func:`starquad.io.cache_dir`, ``~/.cache/starquad`` by default)
with ``-O3 -march=native``; the folder name carries a hash of the source, the torch version and the CPU
model, so a different machine or version builds its own. When it cannot be built or
loaded, :func:`extension` logs one line and returns ``None``, and callers use PyTorch's kernel. Set
``STARQUAD_DWCONV=0`` to use PyTorch's kernel always.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from starquad.io import atomic_write, cache_dir
from starquad.ops.capture import capturing_graph
from starquad.runtime import cpu_model

__all__ = ["DepthwiseConv2d", "depthwise_backward", "extension", "supports"]

_LOG = logging.getLogger(__name__)
_SOURCE = Path(__file__).parent / "csrc" / "dwconv.cpp"
_aten = torch.ops.aten


def build_directory() -> Path:
    """Where this machine's build of the extension lives (keyed by source, torch version and CPU)."""
    key = hashlib.sha256(_SOURCE.read_bytes() + torch.__version__.encode() + cpu_model().encode()).hexdigest()[:12]
    return cache_dir("ext", f"dwconv-{key}")


@functools.cache
def extension():
    """The compiled extension (built on first use), or ``None`` with a one-line notice when it cannot be had."""
    if os.environ.get("STARQUAD_DWCONV", "1") == "0":
        return None
    try:
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime": not our case
        from torch.utils.cpp_extension import load

        folder = build_directory()
        folder.mkdir(parents=True, exist_ok=True)
        # Build from a copy inside the folder: ninja keys its build on the source's path, so every checkout with the
        # same source (the folder name carries its hash) then shares one build instead of recompiling in turn.
        source = folder / _SOURCE.name
        if not source.is_file() or source.read_bytes() != _SOURCE.read_bytes():
            atomic_write(source, _SOURCE.read_bytes())
        return load(name=f"starquad_dwconv_{folder.name.split('-')[1]}", sources=[str(source)],
                    extra_cflags=["-O3", "-march=native", "-fopenmp-simd"], build_directory=str(folder),
                    verbose=False)  # fmt: skip
    except Exception as e:  # no compiler, no ninja, a build error: PyTorch's kernel still works
        _LOG.warning(f"starquad: the fast depthwise-conv backward is not available ({type(e).__name__}: "
                     f"{str(e).splitlines()[0] if str(e) else ''}); using PyTorch's kernel")  # fmt: skip
        return None


def supports(x: torch.Tensor, weight: torch.Tensor, stride: Sequence[int], padding: Sequence[int],
             dilation: Sequence[int], groups: int) -> bool:  # fmt: skip
    """Whether the extension's kernel applies: a CPU float/double depthwise conv, square kernel, equal stride and
    padding on both axes, no dilation, channels-last input."""
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.dim() == 4
            and groups == x.shape[1] and weight.shape[0] == groups and weight.shape[1] == 1
            and weight.shape[2] == weight.shape[3] and stride[0] == stride[1] and padding[0] == padding[1]
            and tuple(dilation) == (1, 1) and x.is_contiguous(memory_format=torch.channels_last))  # fmt: skip


def depthwise_backward(grads: Sequence[torch.Tensor], x: torch.Tensor, weights: Sequence[torch.Tensor],
                       stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int] = (1, 1),
                       groups: int | None = None, need_x: bool = True,
                       need_w: bool = True) -> tuple[torch.Tensor | None, list[torch.Tensor] | None]:  # fmt: skip
    """Gradients of grouped convs ``y_b = conv(x, weights[b])`` (no bias) given ``grads[b] = dL/dy_b``.

    Returns ``(dx, [dW_b])``, ``dx`` summed over the branches. The extension's kernel where :func:`supports`
    holds (depthwise, channels-last, …) and it is built; else PyTorch's ``convolution_backward`` per branch.
    Both give the same numbers to float rounding.
    """
    groups = x.shape[1] if groups is None else groups
    ext = extension() if need_w and supports(x, weights[0], stride, padding, dilation, groups) else None
    gx, gws = None, []
    common = (list(stride), list(padding), list(dilation), False, [0, 0], groups)
    for g, w in zip(grads, weights, strict=True):
        # the input gradient stays PyTorch's (oneDNN's is as fast as its forward); the weight gradient is ours
        gx_b, gw_b, _ = _aten.convolution_backward(g, x, w, None, *common, (need_x, need_w and ext is None, False))
        gx = gx_b if gx is None or gx_b is None else gx + gx_b
        gws.append(gw_b)
    if ext is not None:
        k, s, p = weights[0].shape[-1], int(stride[0]), int(padding[0])
        gws = ext.weight_grads(x, [g.contiguous(memory_format=torch.channels_last) for g in grads], k, s, p)
    return gx, (gws if need_w else None)


class _DepthwiseConvFunction(torch.autograd.Function):
    """``F.conv2d`` forward (oneDNN's, fast); backward through :func:`depthwise_backward`."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        return F.conv2d(x, weight, bias, stride, padding, 1, x.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx, gws = depthwise_backward([grad], x, [weight], ctx.stride, ctx.padding, need_x=need_x, need_w=need_w)
        gb = grad.sum((0, 2, 3)) if need_b and ctx.has_bias else None
        return gx, (gws[0] if gws else None), gb, None, None


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(dim, dim, k, stride, padding=k // 2, groups=dim)`` whose training backward on the CPU uses
    :func:`depthwise_backward` (the extension). The same parameters, state-dict keys, forward and export as
    ``nn.Conv2d``; only the gradient computation differs, and only where the extension applies."""

    def __init__(self, dim: int, kernel_size: int, stride: int = 1, bias: bool = True):
        super().__init__(dim, dim, kernel_size, stride, padding=kernel_size // 2, groups=dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            return self._conv_forward(x, self.weight, self.bias)
        return self._eager_forward(x)

    @torch.jit.unused
    def _eager_forward(self, x: torch.Tensor) -> torch.Tensor:
        recording = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if (recording and not capturing_graph()  # see starquad.ops.capture
                and supports(x, self.weight, self.stride, self.padding, self.dilation, self.groups)
                and extension() is not None):  # fmt: skip
            return _DepthwiseConvFunction.apply(x, self.weight, self.bias, self.stride, self.padding)
        return self._conv_forward(x, self.weight, self.bias)


def build() -> None:
    """Build the extension now and say where (``make setup`` calls this)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"fast depthwise backward: {'built' if extension() is not None else 'NOT available'} ({build_directory()})")
