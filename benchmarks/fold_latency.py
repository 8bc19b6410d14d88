"""Eager CPU latency of a StarNet before and after BatchNorm folding (batch 1, explicit threads).

    python benchmarks/fold_latency.py --model starnet_s1 --threads 2

Prints medians and the speed-up ratio, measured in the same run (interleaved rounds, so drift in a
shared machine's load hits both sides alike). A benchmark, not a test: it gates nothing.
"""

from __future__ import annotations

import argparse

import torch

import starquad
from starquad.bench import markdown_table, time_forward
from starquad.deploy import fold_batchnorm


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="starnet_s1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of --runs timed calls each")
    p.add_argument("--runs", type=int, default=40)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = starquad.create_model(args.model).eval()
    folded = fold_batchnorm(model)
    x = torch.randn(1, 3, args.img_size, args.img_size)
    with torch.no_grad():
        err = ((folded(x) - model(x)).abs().max() / model(x).abs().max()).item()
    medians = {"eager": [], "eager + folded BN": []}
    for _ in range(args.rounds):
        medians["eager"].append(time_forward(model, x, warmup=5, runs=args.runs).median_ms)
        medians["eager + folded BN"].append(time_forward(folded, x, warmup=5, runs=args.runs).median_ms)
    base = sorted(medians["eager"])[args.rounds // 2]
    rows = []
    for name, ms in medians.items():
        med = sorted(ms)[args.rounds // 2]
        rows.append({"path": name, "median_ms": med, "min_round_ms": min(ms), "max_round_ms": max(ms),
                     "speedup": base / med})  # fmt: skip
    print(f"{args.model}, batch 1, {args.img_size}², {args.threads} threads, torch {torch.__version__}")
    print(f"fold max relative error: {err:.3g}")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
