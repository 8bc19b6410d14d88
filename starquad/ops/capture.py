"""When a layer must run as plain tensor ops: while a graph is being captured.

Three layers choose their computation at run time: :class:`~starquad.ops.NormMlp` (a custom autograd Function
when recording, chunked ``addmm(out=…)`` under ``no_grad``), the quadratic / polynomial layers (a recomputing
autograd Function) and :class:`~starquad.ops.DepthwiseConv2d` (the extension's backward). Graph capture
cannot follow either trick: ``torch.jit.trace`` records an autograd Function as an opaque Python op (its
sanity check fails) and writes through ``out=`` into slices of an empty tensor that the TorchScript ONNX
exporter then drops without a word (a block's whole MLP branch went missing from the ONNX graph); a
``torch.export`` program captured under ``no_grad`` keeps ``addmm(out=…)``, which raises when the exported
module is later called with gradients on. So while a graph is captured these layers run the plain math: the
same outputs up to float rounding, and a graph any runtime can replay.
"""

from __future__ import annotations

import torch

__all__ = ["capturing_graph"]


def capturing_graph() -> bool:
    """True under ``torch.jit.trace`` (and what traces through it: the TorchScript ONNX exporter, OpenVINO's
    ``convert_model`` of a module), ``torch.compile`` and ``torch.export`` (and the dynamo ONNX exporter)."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()
