"""starquad's deploy path against timm's StarNet, same runtime, same settings, same run.

    python benchmarks/deploy_vs_timm.py --models starnet_s1 starnet_s2 starnet_s3 starnet_s4 --threads 2

* ONNX Runtime: ``starquad export``'s graph (re-parameterised: BatchNorm folded into convs and the head)
  against timm's ``starnet_*`` exported by torch as it is; both run by ONNX Runtime's CPU provider
  with ``ORT_ENABLE_ALL`` and the same explicit threads (ORT folds BatchNorm itself, so the gain left is ours).
  Reported: both latencies, the ratio ours/timm (≤ 1.00 means ours is at least as fast) and ours as a
  fraction of the ONNX Runtime square-GEMM peak (2·MACs / latency).
* PyTorch (``--torch``): our PyTorch paths — ``torch.compile`` with freezing, and the AOTInductor package of
  ``starquad export --format pt2`` (both folded, f1/f2 merged) — against timm's model in eager mode: the
  speed-ups timm/ours, and the best PyTorch path over our ONNX Runtime graph (the issue's aim: within 1.2×).

All runners of a model are timed in one interleaved run (:func:`starquad.bench.latency.time_interleaved`:
every round visits each in a fresh random order), so drift in a shared machine's load hits all alike; the
figure is the median of all timed calls. A benchmark, not a test: it gates nothing.
"""

from __future__ import annotations

import argparse

import torch

import starquad
from starquad.bench import count_flops, markdown_table
from starquad.bench.backends import gemm_peak_gflops, make_runner
from starquad.bench.latency import time_interleaved


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["starnet_s1", "starnet_s2", "starnet_s3", "starnet_s4"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--torch", action="store_true", help="also compare PyTorch paths (compiles: ~1–2 min a model)")
    args = p.parse_args()

    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    peak = gemm_peak_gflops("onnxruntime", args.threads)
    print(f"ONNX Runtime square-GEMM peak: {peak:.1f} GFLOP/s, {args.threads} threads")
    rows = []
    for name in args.models:
        ours, theirs = starquad.create_model(name).eval(), starquad.create_model("timm:" + name).eval()
        theirs.load_state_dict(ours.state_dict())  # same weights: the same numbers either way
        macs = count_flops(ours, (3, 224, 224)).macs
        runners = {
            "ours_ort": make_runner(ours, "onnxruntime", x, args.threads),
            "timm_ort": make_runner(theirs, "onnxruntime", x, args.threads, reparameterize=False),
        }
        if args.torch:
            runners["ours_compile"] = make_runner(ours, "compile", x, args.threads)
            runners["ours_aoti"] = make_runner(ours, "aoti", x, args.threads)
            runners["timm_eager"] = make_runner(theirs, "eager", x, args.threads, reparameterize=False)
        timed = time_interleaved(list(runners.values()), rounds=args.rounds, warmup=args.warmup, runs=args.runs,
                                 label=name)  # fmt: skip
        ms = {k: t["ms"] for k, t in zip(runners, timed, strict=True)}
        row = {"model": name, "ours_ort_ms": ms["ours_ort"], "timm_ort_ms": ms["timm_ort"],
               "ratio_ours_over_timm": ms["ours_ort"] / ms["timm_ort"],
               "ours_roofline_pct": 100 * 2 * macs / (ms["ours_ort"] * 1e-3) / 1e9 / peak}  # fmt: skip
        if args.torch:
            best = min(ms["ours_compile"], ms["ours_aoti"])
            row.update(ours_compile_ms=ms["ours_compile"], ours_aoti_ms=ms["ours_aoti"], timm_eager_ms=ms["timm_eager"],
                       compile_speedup=ms["timm_eager"] / ms["ours_compile"],
                       aoti_speedup=ms["timm_eager"] / ms["ours_aoti"],
                       best_torch_over_ort=best / ms["ours_ort"])  # fmt: skip
        rows.append(row)
        print(markdown_table([row]), flush=True)
    print()
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
