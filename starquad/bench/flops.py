"""The one FLOP counter: conv/linear multiply-accumulates (fvcore-compatible) plus element-wise products.

Built on :class:`torch.utils.flop_counter.FlopCounterMode`, which traces the aten ops of one forward
pass. Matrix-type ops (convolution, mm, addmm, bmm, attention) are reported by torch as 2·MACs; we
report MACs, which is what fvcore and the papers count (and call "FLOPs"): biases, norms and
activations are not counted. Element-wise products (``aten.mul``: the star product, layer scale) are
counted separately, one per output element, since a "FLOPs" table would otherwise hide them.

fvcore also counts norms and pooling by default (BatchNorm in eval 2 per element with affine, 1
without; LayerNorm 5 with affine, 4 without; average pooling 1 per input element), and the
StarNet paper's MACs include them. We count those the same way in ``norm_pool`` so that
``fvcore_macs = macs + norm_pool`` is the figure that compares with published tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["FlopCount", "count_flops", "model_stats"]

_aten = torch.ops.aten
_ELEMENTWISE = (_aten.mul, _aten.mul_)


def _elementwise_count(*args, out_shape=None, **kwargs) -> int:
    return math.prod(out_shape)


def _batch_norm_count(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    return math.prod(x_shape) * (2 if w_shape is not None else 1)


def _layer_norm_count(x_shape, normalized_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    return math.prod(x_shape) * (5 if w_shape is not None else 4)


def _input_count(x_shape, *args, out_shape=None, **kwargs) -> int:
    return math.prod(x_shape)


_NORM_POOL = {
    _aten._native_batch_norm_legit_no_training: _batch_norm_count,
    _aten._native_batch_norm_legit: _batch_norm_count,
    _aten.native_layer_norm: _layer_norm_count,
    _aten._adaptive_avg_pool2d: _input_count,
    _aten.mean: _input_count,  # global average pooling reaches the dispatcher as a mean
}


@dataclass(frozen=True)
class FlopCount:
    """Counts for one forward pass at batch 1."""

    macs: int  # conv + linear (+ matmul/attention) multiply-accumulates
    norm_pool: int  # fvcore's estimate for norms and pooling
    elementwise_mul: int  # element-wise products
    params: int
    input_size: tuple[int, ...]

    @property
    def fvcore_macs(self) -> int:
        """What fvcore's default ``FlopCountAnalysis`` reports (what the papers' tables list)."""
        return self.macs + self.norm_pool

    @property
    def gflops(self) -> float:
        """2·MACs in GFLOP (for achieved-rate and roofline figures)."""
        return 2 * self.macs / 1e9


@torch.no_grad()
def count_flops(model: nn.Module, input_size: Sequence[int] | None = None) -> FlopCount:
    """Count one forward pass of ``model`` on a single random input.

    Args:
        model: any module; put in eval mode for the count and restored afterwards.
        input_size: input shape without batch, e.g. ``(3, 224, 224)``; default: the model's
            ``pretrained_cfg['input_size']``.
    """
    if input_size is None:
        cfg = getattr(model, "pretrained_cfg", None) or {}
        if "input_size" not in cfg:
            raise ValueError("the model has no pretrained_cfg['input_size']; pass input_size=(C, H, W)")
        input_size = cfg["input_size"]
    input_size = tuple(int(s) for s in input_size)
    param = next(model.parameters(), None)
    x = torch.randn(1, *input_size, device=param.device if param is not None else "cpu")
    was_training = model.training
    model.eval()
    try:
        mapping = {**{op: _elementwise_count for op in _ELEMENTWISE}, **_NORM_POOL}
        counter = FlopCounterMode(display=False, custom_mapping=mapping)
        with counter:
            model(x)
    finally:
        model.train(was_training)
    per_op = counter.get_flop_counts().get("Global", {})
    elementwise = sum(n for op, n in per_op.items() if op in _ELEMENTWISE)
    norm_pool = sum(n for op, n in per_op.items() if op in _NORM_POOL)
    matrix_flops = sum(n for op, n in per_op.items() if op not in _ELEMENTWISE and op not in _NORM_POOL)
    return FlopCount(
        macs=matrix_flops // 2,
        norm_pool=norm_pool,
        elementwise_mul=elementwise,
        params=sum(p.numel() for p in model.parameters()),
        input_size=input_size,
    )


def model_stats(name: str, reparameterize: bool = False, input_size: Sequence[int] | None = None,
                **model_kwargs) -> dict[str, Any]:  # fmt: skip
    """Params and FLOP counts of a registered model at its cfg input size (or ``input_size``), beside the paper's
    figures (those only at the cfg input size: the papers count there).

    Args:
        name: model name.
        reparameterize: count the inference form that ``bench latency`` times (timm's ``reparameterize_model``,
            BatchNorm folded; MobileOne-S0: 275M MACs instead of its training form's 1052M) instead of the
            model as built.
        input_size: ``(C, H, W)`` to count at; default: the model's cfg input size.
        **model_kwargs: passed to the model.
    """
    from starquad.models import create_model, get_model_cfg

    model = create_model(name, **model_kwargs)
    if reparameterize:
        from starquad.deploy import prepare_for_inference

        model = prepare_for_inference(model, merge_branches=False)
    count = count_flops(model, input_size)
    cfg = get_model_cfg(name)
    at_cfg_size = input_size is None or tuple(input_size) == tuple(cfg.get("input_size", ()))
    paper = cfg.get("paper_metrics", {}) if at_cfg_size else {}
    row: dict[str, Any] = {
        "model": name,
        "form": "inference" if reparameterize else "as built",
        "input": "×".join(str(s) for s in count.input_size),
        "params_m": count.params / 1e6,
        "macs_m": count.macs / 1e6,
        "fvcore_macs_m": count.fvcore_macs / 1e6,
        "elementwise_mul_m": count.elementwise_mul / 1e6,
        "paper_params_m": paper.get("params_m"),
        "paper_macs_m": paper.get("macs_m"),
        "paper_top1": paper.get("top1"),
    }
    if paper.get("params_m"):
        row["params_diff_pct"] = round(100 * (row["params_m"] / paper["params_m"] - 1), 2)
    if paper.get("macs_m"):
        # Papers count fvcore's total (norms and pooling included) unless their cfg says conv + linear only.
        ours = row["macs_m"] if paper.get("macs_count") == "conv_linear" else row["fvcore_macs_m"]
        row["macs_diff_pct"] = round(100 * (ours / paper["macs_m"] - 1), 2)
    return row
