"""The depthwise-conv weight gradient: starquad's CPU kernel against PyTorch's, and what it does to a training step.

    python benchmarks/dwconv_backward.py --threads 2

1. The weight gradient alone at the issue's shapes (8×64×56², 8×384×7², 256×256×4², kernel 7, channels-last):
   PyTorch's ``convolution_backward`` (weight only) against the extension, with the forward beside them for scale.
2. A Fashion-MNIST training step of the recipe's model (StarNet-S050, stride-1 stem, batch 256, channels-last):
   the step with PyTorch's depthwise backward and with ours, and the share of the step that the depthwise weight
   gradients take in each (their time at the step's own shapes, timed alone, over the step's time).

Everything of one table is timed in one interleaved run (:func:`starquad.bench.latency.time_interleaved`). A
benchmark, not a test: it gates nothing.
"""

from __future__ import annotations

import argparse

import torch

import starquad.ops.dwconv as dwconv
from starquad.bench import markdown_table
from starquad.bench.latency import time_interleaved
from starquad.models import create_model
from starquad.runtime import torch_threads

_aten = torch.ops.aten


def _cl(*shape):
    return torch.randn(*shape).contiguous(memory_format=torch.channels_last)


def _runners(ext, n: int, c: int, h: int, k: int) -> list:
    """forward, PyTorch's weight gradient, ours: for one shape."""
    p = k // 2
    x, g, w = _cl(n, c, h, h), _cl(n, c, h, h), torch.randn(c, 1, k, k)
    mask = (False, True, False)
    return [
        lambda: torch.nn.functional.conv2d(x, w, None, 1, p, 1, c),
        lambda: _aten.convolution_backward(g, x, w, None, [1, 1], [p, p], [1, 1], False, [0, 0], c, mask),
        lambda: ext.weight_grads(x, [g], k, 1, p),
    ]


def kernel_table(ext, rounds: int) -> list[dict]:
    rows = []
    for n, c, h, k in ((8, 64, 56, 7), (8, 384, 7, 7), (256, 256, 4, 7)):
        timed = time_interleaved(_runners(ext, n, c, h, k), rounds=rounds, warmup=2, runs=5, label="dw")
        fwd, torch_dw, ours = (t["ms"] for t in timed)
        rows.append({"shape": f"{n}×{c}×{h}², k{k}", "forward_ms": fwd, "pytorch_dW_ms": torch_dw, "ours_dW_ms": ours,
                     "speedup": torch_dw / ours})  # fmt: skip
    return rows


def step_table(ext, rounds: int) -> list[dict]:
    torch.manual_seed(0)
    model = create_model("starnet_s050", num_classes=10, in_chans=1, stem_stride=1, stem_chs=16)
    model = model.to(memory_format=torch.channels_last).train()
    x, y = _cl(256, 1, 28, 28), torch.randint(0, 10, (256,))
    shapes = []  # (input shape, kernel, stride) of every depthwise conv in the step

    def record(mod, inp, out):
        shapes.append((tuple(inp[0].shape), mod.kernel_size[0], mod.stride[0]))

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, dwconv.DepthwiseConv2d)]
    model(x)
    for h in hooks:
        h.remove()

    def step(use_ext: bool):
        def run():
            dwconv.extension = (lambda: ext) if use_ext else (lambda: None)
            model.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()

        return run

    def dw_only(use_ext: bool):
        tensors = [(_cl(*s), _cl(*s), torch.randn(s[1], 1, k, k), k, st) for s, k, st in shapes]

        def run():
            for xi, gi, wi, k, st in tensors:
                if use_ext:
                    ext.weight_grads(xi, [gi], k, st, k // 2)
                else:
                    _aten.convolution_backward(gi, xi, wi, None, [st, st], [k // 2, k // 2], [1, 1], False, [0, 0],
                                               xi.shape[1], (False, True, False))  # fmt: skip

        return run

    real = dwconv.extension
    try:
        runners = [step(False), step(True), dw_only(False), dw_only(True)]
        before, after, dw_before, dw_after = (t["ms"] for t in time_interleaved(runners, rounds=rounds, warmup=1,
                                                                                 runs=3, label="step"))  # fmt: skip
    finally:
        dwconv.extension = real
    return [{"backward": "PyTorch", "step_ms": before, "depthwise_dW_ms": dw_before, "dW_share": dw_before / before},
            {"backward": "starquad", "step_ms": after, "depthwise_dW_ms": dw_after, "dW_share": dw_after / after},
            {"backward": "speed-up", "step_ms": before / after, "depthwise_dW_ms": dw_before / dw_after,
             "dW_share": None}]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    ext = dwconv.extension()
    if ext is None:
        raise SystemExit("the extension is not built here (see the log line above); nothing to compare")
    with torch_threads(args.threads):
        print(f"{args.threads} threads\n\nWeight gradient alone:\n")
        print(markdown_table(kernel_table(ext, args.rounds)))
        print("\nFashion-MNIST training step (StarNet-S050, stride-1 stem, batch 256):\n")
        print(markdown_table(step_table(ext, args.rounds)))


if __name__ == "__main__":
    main()
