"""Quadratic neurons: low-rank quadratic convolution and linear layers, and the order-n polynomial conv.

A full quadratic neuron ``y = xᵀW_q x + w_lᵀx + b`` costs O(n²) parameters. QuadraNet (Xu et al.,
ASP-DAC 2024, arXiv 2311.17956) uses the low-rank form ``y = (w_aᵀx)(w_bᵀx) + w_cᵀx + b``: three linear
*branches* fused by a product and a sum, O(3n). It is the star operation of "Rewrite the Stars" plus a
linear term — the same high-order interaction.

Design (one home for all three layers):

* **The branches are one weight tensor**, ``(n_branches · out, in / groups, k, k)``, the weight of one
  convolution with ``n_branches ×`` the output channels. Output channel ``o`` of a grouped conv belongs to
  group ``o // (n_branches · out / groups)``, so the branches are *interleaved per group*: the weight is
  laid out ``(groups, branch, out / groups, …)``. For the depthwise case (QuadraNet's), channel ``c`` has
  its three kernels at rows ``3c, 3c + 1, 3c + 2``. :func:`split_branches` / :func:`merge_branches`
  convert to and from per-branch tensors (the authors' ``conv1, conv2, conv3`` layout).
* **How it runs** depends on the device: on CUDA it is one convolution call. On the CPU a grouped conv
  with a channel multiplier (3 outputs per group) has no fast oneDNN kernel — measured 13.2 ms against
  3 × 1.4 ms for three plain depthwise convs (8×64×56², 7×7, channels-last, 2 threads) — so there each
  branch runs as its own conv on a slice of the weight. Either way the parameters are the same. The exported
  graph (ONNX) keeps the CPU's form, three convs: ONNX Runtime has no fast kernel for the multiplier either —
  QuadraNet-T25 at 224², batch 1, 2 threads ran in 60.9 ms with three depthwise convs per block and in 93.0 ms
  with one grouped conv of 3C outputs (2-core AMD EPYC, one interleaved run, 2026-12-07).
* **Memory-efficient mode** (``memory_efficient=True``, the default): plain autograd keeps every branch
  output alive until backward (the product needs ``x_a`` and ``x_b``; with one conv their storage is the
  whole ``3 · out`` tensor). :class:`_RecomputedBranches` saves only the input (and the parameters) and
  recomputes the branches in backward — one extra forward of the linear part (of ``x_a`` and ``x_b`` only, for
  the quadratic combiner on the CPU's separate convs: ``x_c``'s gradient is ``dL/dy`` itself) — so a quadratic
  layer keeps as much activation memory as a plain one. QuadraLib (MLSys 2022) did this for fully connected
  layers only. Without autograd recording (``no_grad``, inference) both modes run the same plain forward.

The combiners:

* quadratic (3 branches): ``y = x_a ⊙ x_b + x_c``;
* polynomial of order n (n branches, the QuadraNet authors' recursion): ``y₀ = 0``,
  ``yᵢ = yᵢ₋₁ ⊙ xᵢ + xᵢ``, a degree-n polynomial in the input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from starquad.errors import ConfigError
from starquad.ops.capture import capturing_graph
from starquad.ops.dwconv import depthwise_backward

__all__ = ["PolynomialConv2d", "QuadraticConv2d", "QuadraticLinear", "merge_branches", "split_branches"]

_aten = torch.ops.aten


def split_branches(tensor: torch.Tensor, n_branches: int, groups: int = 1) -> list[torch.Tensor]:
    """Per-branch weights (or biases) from a merged ``(n_branches · out, …)`` tensor, undoing the interleave."""
    per_group = tensor.unflatten(0, (groups, n_branches, -1))  # (groups, branch, out/groups, ...)
    return [per_group[:, k].flatten(0, 1) for k in range(n_branches)]


def merge_branches(tensors: Sequence[torch.Tensor], groups: int = 1) -> torch.Tensor:
    """The merged ``(n · out, …)`` tensor from per-branch ``(out, …)`` tensors (inverse of :func:`split_branches`)."""
    return torch.stack([t.unflatten(0, (groups, -1)) for t in tensors], 1).flatten(0, 2)


def combine_branches(branches: list[torch.Tensor], polynomial: bool) -> torch.Tensor:
    """``a ⊙ b + c`` (quadratic) or the order-n recursion (polynomial) with plain ops (TorchScript's path)."""
    if not polynomial:
        return torch.addcmul(branches[2], branches[0], branches[1])
    y = branches[0]
    for i in range(1, len(branches)):
        y = torch.addcmul(branches[i], y, branches[i])
    return y


# --- combiners: y from the branch outputs, and the branch gradients from dL/dy ---------------------------


class _Quadratic:
    n_branches = 3
    backward_reads = (True, True, False)  # the branches backward reads: x_c's gradient is dL/dy itself

    @staticmethod
    def forward(branches: Sequence[torch.Tensor]) -> torch.Tensor:
        a, b, c = branches
        return torch.addcmul(c, a, b)  # a ⊙ b + c in one kernel

    @staticmethod
    def backward(branches: Sequence[torch.Tensor], grad: torch.Tensor) -> list[torch.Tensor]:
        a, b, _ = branches
        return [grad * b, grad * a, grad]


class _Polynomial:
    def __init__(self, order: int):
        self.n_branches = order
        self.backward_reads = (True,) * order

    @staticmethod
    def forward(branches: Sequence[torch.Tensor]) -> torch.Tensor:
        y = branches[0]  # y₁ = 0 ⊙ x₁ + x₁
        for x in branches[1:]:
            y = torch.addcmul(x, y, x)
        return y

    @staticmethod
    def backward(branches: Sequence[torch.Tensor], grad: torch.Tensor) -> list[torch.Tensor]:
        prefixes = [branches[0]]  # y₁ … yₙ₋₁, recomputed (cheap, element-wise)
        for x in branches[1:-1]:
            prefixes.append(torch.addcmul(x, prefixes[-1], x))
        grads = [None] * len(branches)
        g = grad
        for i in range(len(branches) - 1, 0, -1):  # yᵢ = (yᵢ₋₁ + 1) ⊙ xᵢ
            grads[i] = g * (prefixes[i - 1] + 1)
            g = g * branches[i]
        grads[0] = g
        return grads


# --- the linear part: n branches of one conv / linear -----------------------------------------------------


@dataclass(frozen=True)
class _BranchedConv:
    n_branches: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    def _separate(self, x: torch.Tensor, weight: torch.Tensor) -> bool:
        """Whether the branches run as separate convs: on the CPU for grouped convs (the module docstring), except
        where each image's output is a single pixel. There one conv costs nothing, and the separate form meets a
        fault of OpenVINO's CPU plugin (2026.4): two convs added, then multiplied by a per-channel tensor (the
        block's layer scale), at batch 1 and a 1×1 output, came out wrong by 0.3–2.4 while PyTorch and ONNX
        Runtime agreed with each other (a search space's last stage at 28² input has 1×1 maps)."""
        if x.device.type != "cpu" or self.groups == 1:
            return False
        out = [(size + 2 * p - d * (k - 1) - 1) // s + 1 for size, k, s, p, d in
               zip(x.shape[-2:], weight.shape[-2:], self.stride, self.padding, self.dilation, strict=True)]  # fmt: skip
        return out != [1, 1]

    def run(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
            which: Sequence[bool] | None = None) -> list[torch.Tensor | None]:  # fmt: skip
        """The branch outputs; with ``which``, a branch marked ``False`` may come back as ``None`` (not computed
        where the branches run as separate convs)."""
        n, g = self.n_branches, self.groups
        if self._separate(x, weight):
            biases = split_branches(bias, n, g) if bias is not None else [None] * n
            which = which or (True,) * n
            return [
                F.conv2d(x, w, b, self.stride, self.padding, self.dilation, g) if needed else None
                for w, b, needed in zip(split_branches(weight, n, g), biases, which, strict=True)
            ]
        y = F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, g)
        return [branch.flatten(1, 2) for branch in y.unflatten(1, (g, n, -1)).unbind(2)]

    def backward(self, grads: list[torch.Tensor], x: torch.Tensor, weight: torch.Tensor, needs: Sequence[bool]):
        n, g = self.n_branches, self.groups
        need_x, need_w, need_b = needs
        common = (self.stride, self.padding, self.dilation, False, (0, 0), g)
        if self._separate(x, weight):  # per branch; a depthwise one's weight gradient through the fast kernel
            gx, gws = depthwise_backward(grads, x, split_branches(weight, n, g), self.stride, self.padding,
                                         self.dilation, g, need_x, need_w)  # fmt: skip
            gw = merge_branches(gws, g) if need_w else None
        else:
            merged = torch.stack([t.unflatten(1, (g, -1)) for t in grads], 2).flatten(1, 3)
            gx, gw, _ = _aten.convolution_backward(merged, x, weight, None, *common, (need_x, need_w, False))
        # The bias gradient is a plain sum; convolution_backward's bias path is slower than this on the CPU.
        gb = merge_branches([t.sum((0, 2, 3)) for t in grads], g) if need_b else None
        return gx, gw, gb


@dataclass(frozen=True)
class _BranchedLinear:
    n_branches: int

    def run(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
            which: Sequence[bool] | None = None) -> list[torch.Tensor]:  # fmt: skip
        """The branch outputs, all of them (one matmul computes every branch; ``which`` changes nothing here)."""
        return list(F.linear(x, weight, bias).chunk(self.n_branches, -1))

    def backward(self, grads: list[torch.Tensor], x: torch.Tensor, weight: torch.Tensor, needs: Sequence[bool]):
        need_x, need_w, need_b = needs
        g2d = torch.cat(grads, -1).flatten(0, -2)  # (rows, n · out)
        gx = (g2d @ weight).view(x.shape) if need_x else None
        gw = g2d.t() @ x.reshape(-1, x.shape[-1]) if need_w else None
        gb = g2d.sum(0) if need_b else None
        return gx, gw, gb


class _RecomputedBranches(torch.autograd.Function):
    """``combiner(op(x))`` that saves only ``x`` and the parameters; the branches are recomputed in backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, op, combiner):
        ctx.save_for_backward(x, weight, bias)
        ctx.op, ctx.combiner = op, combiner
        return combiner.forward(op.run(x, weight, bias))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight, bias = ctx.saved_tensors
        branches = ctx.op.run(x, weight, bias, ctx.combiner.backward_reads)  # the recompute (x_c not needed)
        grads = ctx.combiner.backward(branches, grad)
        del branches
        gx, gw, gb = ctx.op.backward(grads, x, weight, ctx.needs_input_grad[:3])
        return gx, gw, gb, None, None


class _BranchedLayer(nn.Module):
    """Shared forward and init of the layers below: ``combiner(op(x))``, memory-efficient when recording."""

    __jit_unused_properties__ = ["n_branches"]  # noqa: RUF012  (TorchScript reads this class attribute)

    def __init__(self, op, combiner, memory_efficient: bool):
        super().__init__()
        self._op, self._combiner = op, combiner
        self.memory_efficient = memory_efficient
        self._branches: int = combiner.n_branches
        self._polynomial: bool = isinstance(combiner, _Polynomial)

    @property
    def n_branches(self) -> int:
        return self._combiner.n_branches

    def reset_parameters(self) -> None:
        # As nn.Conv2d / nn.Linear: every branch has the same fan-in, so one call covers all of them.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)

    def branch_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The branch outputs ``[x_a, x_b, …]`` (for analysis; not used by ``forward``)."""
        return self._op.run(x, self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():  # TorchScript: the plain math on one linear call (no autograd.Function)
            return combine_branches(self._script_branches(x), self._polynomial)
        return self._eager_forward(x)

    @torch.jit.unused
    def _eager_forward(self, x: torch.Tensor) -> torch.Tensor:
        recording = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if self.memory_efficient and recording and not capturing_graph():  # see starquad.ops.capture
            return _RecomputedBranches.apply(x, self.weight, self.bias, self._op, self._combiner)
        return self._combiner.forward(self._op.run(x, self.weight, self.bias))


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class _BranchedConv2d(_BranchedLayer):
    def __init__(self, in_chs, out_chs, kernel_size, stride, padding, dilation, groups, bias, memory_efficient,
                 combiner):  # fmt: skip
        if in_chs % groups or out_chs % groups:
            raise ConfigError(f"in_chs ({in_chs}) and out_chs ({out_chs}) must both be divisible by groups ({groups})")
        kernel_size, dilation = _pair(kernel_size), _pair(dilation)
        if padding is None:  # 'same' for odd kernels at stride 1
            if any(k % 2 == 0 for k in kernel_size):
                raise ConfigError(f"padding=None ('same') needs an odd kernel, got {kernel_size}; pass padding")
            padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel_size, dilation, strict=True))
        op = _BranchedConv(combiner.n_branches, _pair(stride), _pair(padding), dilation, groups)
        super().__init__(op, combiner, memory_efficient)
        self.in_chs, self.out_chs, self.kernel_size, self.groups = in_chs, out_chs, kernel_size, groups
        self.stride, self.padding, self.dilation = op.stride, op.padding, op.dilation
        n = combiner.n_branches
        self.weight = nn.Parameter(torch.empty(n * out_chs, in_chs // groups, *kernel_size))
        self.bias = nn.Parameter(torch.empty(n * out_chs)) if bias else None
        self.reset_parameters()

    def _script_branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        y = y.unflatten(1, (self.groups, self._branches, -1))  # (N, groups, branch, out/groups, H, W)
        return [y[:, :, k].flatten(1, 2) for k in range(self._branches)]

    def extra_repr(self) -> str:
        op = self._op
        return (f"{self.in_chs}, {self.out_chs}, kernel_size={self.kernel_size}, stride={op.stride}, "
                f"padding={op.padding}, groups={self.groups}, bias={self.bias is not None}, "
                f"branches={self.n_branches}, memory_efficient={self.memory_efficient}")  # fmt: skip


class QuadraticConv2d(_BranchedConv2d):
    """Low-rank quadratic convolution ``conv_a(x) ⊙ conv_b(x) + conv_c(x)`` (QuadraConv when depthwise).

    Args:
        in_chs, out_chs: channels.
        kernel_size: default 7 (QuadraNet's).
        stride, dilation, groups: as ``nn.Conv2d``; ``groups=in_chs=out_chs`` is QuadraNet's depthwise case.
        padding: default ``None`` = 'same' (odd kernels).
        bias: each branch has a bias (QuadraNet: yes).
        memory_efficient: save only the input for backward and recompute the branches (see the module doc).
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int | Sequence[int] = 7, stride: int = 1,
                 padding: int | Sequence[int] | None = None, dilation: int = 1, groups: int = 1, bias: bool = True,
                 memory_efficient: bool = True):  # fmt: skip
        super().__init__(in_chs, out_chs, kernel_size, stride, padding, dilation, groups, bias, memory_efficient,
                         _Quadratic())  # fmt: skip


class PolynomialConv2d(_BranchedConv2d):
    """Order-``n`` polynomial convolution: ``y ← y ⊙ conv_i(x) + conv_i(x)`` for ``i = 1 … n`` from ``y = 0``.

    ``n`` branches; arguments as :class:`QuadraticConv2d` plus ``order`` (≥ 2).
    """

    def __init__(self, in_chs: int, out_chs: int, order: int = 3, kernel_size: int | Sequence[int] = 7,
                 stride: int = 1, padding: int | Sequence[int] | None = None, dilation: int = 1, groups: int = 1,
                 bias: bool = True, memory_efficient: bool = True):  # fmt: skip
        if order < 2:
            raise ConfigError(f"order must be >= 2 (order 1 is a plain conv), got {order}")
        super().__init__(in_chs, out_chs, kernel_size, stride, padding, dilation, groups, bias, memory_efficient,
                         _Polynomial(order))  # fmt: skip
        self.order = order


class QuadraticLinear(_BranchedLayer):
    """Low-rank quadratic linear layer ``(W_a x + b_a) ⊙ (W_b x + b_b) + W_c x + b_c`` (channel-wise, Table V).

    One ``(3 · out, in)`` weight; ``x`` is ``(…, in_features)`` as for ``nn.Linear``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, memory_efficient: bool = True):
        super().__init__(_BranchedLinear(3), _Quadratic(), memory_efficient)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(3 * out_features, in_features))
        self.bias = nn.Parameter(torch.empty(3 * out_features)) if bias else None
        self.reset_parameters()

    def _script_branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(F.linear(x, self.weight, self.bias).chunk(self._branches, -1))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, memory_efficient={self.memory_efficient}")  # fmt: skip
