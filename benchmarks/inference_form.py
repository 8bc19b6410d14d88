"""The inference form of LayerNorm blocks in ONNX Runtime: before and after folding, beside timm's ConvNeXt-T and
MobileNetV2, in MACs per millisecond.

    python benchmarks/inference_form.py --threads 2                # QuadraNet-T25, HorNet-T at 224², batch 1
    python benchmarks/inference_form.py --space --threads 2        # the search spaces' networks at 28², batch 1

*before*: the model as ``starquad export`` wrote it until the fold (BatchNorm folded, nothing else); *after*: its
inference form (:func:`starquad.deploy.prepare_for_inference`: every layer scale γ and LayerNorm affine folded
into the linear / conv layer beside it). Models get layer scales drawn from U(0.5, 1) and LayerNorm affines from
U(0.5, 1.5) / U(-0.5, 0.5), as trained ones have them (:func:`starquad.deploy.verify.with_visible_branches`), and
each ONNX file's outputs are checked against the model's. ``--space``: for each kernel, a network of the
``quadranet`` space with every searchable layer the QuadraBlock of that kernel (expansion 4), and one of the
``mbconv`` space with every layer the MBConv of that kernel (expansion 6), at the spaces' 28² single-channel input.

Every runner is timed in one interleaved run (:func:`starquad.bench.latency.time_interleaved`), so drift of a
shared machine's load hits all alike; the figure is the median of all timed calls, MACs counted on the model as
built (conv + linear). A benchmark, not a test: it gates nothing.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import starquad
from starquad.bench import count_flops, markdown_table
from starquad.bench.backends import deployable, make_runner
from starquad.bench.latency import time_interleaved
from starquad.deploy import fold_batchnorm
from starquad.deploy.onnx import ort_session
from starquad.deploy.verify import with_visible_branches
from starquad.runtime import cpu_model


def _space_models() -> dict[str, tuple[torch.nn.Module, tuple[int, ...]]]:
    from starquad.nas.space import SPACES, build

    models = {}
    for space, expansion in (("quadranet", 4), ("mbconv", 6)):
        sp = SPACES[space]
        for kernel in (3, 5, 7):
            op = next(i for i, c in enumerate(sp.candidates) if (c.kernel, c.expansion) == (kernel, expansion))
            models[f"{space} {sp.candidates[op].name} ×{sp.num_layers}"] = (
                build(sp, [op] * sp.num_layers, num_classes=10, in_chans=1), (1, 1, 28, 28))
    return models


def _checked(model: torch.nn.Module, onnx: bytes, x: torch.Tensor, threads: int) -> float:
    with torch.no_grad():
        ref = model(x).numpy()
    got = ort_session(onnx, threads).run(None, {"input": x.numpy()})[0]
    return float(np.abs(got - ref).max())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["quadranet_t25", "hornet_t"])
    p.add_argument("--baselines", nargs="+", default=["convnext_tiny", "mobilenetv2_100"], help="timm models")
    p.add_argument("--space", action="store_true", help="the search spaces' networks at 28² instead of --models")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    if args.space:
        models = _space_models()
        baselines = {}
    else:
        models = {n: (starquad.create_model(n), (1, 3, 224, 224)) for n in args.models}
        baselines = {n: (starquad.create_model("timm:" + n), (1, 3, 224, 224)) for n in args.baselines}
    runners, rows = [], []
    for name, (model, shape) in {**models, **baselines}.items():
        model = with_visible_branches(model.eval()) if name in models else model.eval()
        x = torch.randn(*shape)
        macs = count_flops(model, shape[1:]).macs
        forms = {"after": deployable(model, "onnxruntime", x)}
        if name in models:
            forms["before"] = deployable(fold_batchnorm(model, strict=False), "onnxruntime", x, reparameterize=False)
        for form, onnx in forms.items():
            diff = _checked(model, onnx, x, args.threads)
            runners.append(make_runner(onnx, "onnxruntime", x, args.threads))
            rows.append({"model": name, "form": form if name in models else "timm (folded)", "macs_m": macs / 1e6,
                         "max_abs_diff": diff})  # fmt: skip
    timed = time_interleaved(runners, rounds=args.rounds, warmup=args.warmup, runs=args.runs, label="inference form")
    for row, t in zip(rows, timed, strict=True):
        row["ms"] = t["ms"]
        row["macs_per_ms_m"] = row["macs_m"] / t["ms"]
    for row in rows:
        if row["form"] == "after":
            before = next(r for r in rows if r["model"] == row["model"] and r["form"] == "before")
            row["speedup"] = before["ms"] / row["ms"]
    print(f"ONNX Runtime, batch 1, {args.threads} threads, {cpu_model()}, torch {torch.__version__}")
    print(markdown_table(rows, ["model", "form", "macs_m", "ms", "macs_per_ms_m", "speedup", "max_abs_diff"]))


if __name__ == "__main__":
    main()
