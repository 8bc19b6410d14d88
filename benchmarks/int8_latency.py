"""int8 against float latency in ONNX Runtime and OpenVINO, batch 1, on the machine in hand.

    python benchmarks/int8_latency.py --threads 2                       # StarNet-S1, S4, QuadraNet-T25 at 224²
    python benchmarks/int8_latency.py --models mobilenetv2_100 --threads 2

Each model is put in its inference form and exported (:func:`starquad.bench.backends.deployable`); the int8 form is
the one ``bench latency --precision int8`` times (ONNX Runtime: QDQ, per-channel int8 weights; OpenVINO: NNCF;
every product in int8, calibrated on generated images: the speed, not the accuracy). Every runner is timed in
interleaved rounds (:func:`starquad.bench.latency.time_ratios`: per round and runner, untimed calls, then a
block of timed ones), so a shared machine's load falls on all alike; the ratio is the median of the rounds'
int8/float ratios. Blocks, not call-by-call alternation: ONNX Runtime's intra-op threads spin after a call, and
with two sessions alternating call by call each call ran beside the other session's spinning threads (StarNet-S1
float 14.8 ms that way, 6.5 ms alone, on a 2-core AMD EPYC; the int8/float ratio moved less, 0.82 vs 0.80 with
spinning off). A benchmark, not a test: it gates nothing. The CPU's int8 instructions decide much of the ratio
(``lscpu``: avx512_vnni / avx_vnni / amx give int8 dot products that AVX2 alone does not), so the CPU is printed
with the figures.
"""

from __future__ import annotations

import argparse

import torch

import starquad
from starquad.bench import markdown_table
from starquad.bench.backends import make_runner
from starquad.bench.latency import time_ratios
from starquad.bench.suite import input_size_of
from starquad.runtime import cpu_model


def _int8_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    found = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return ", ".join(found) or "none of avx2/avx512/vnni/amx"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["starnet_s1", "starnet_s4", "quadranet_t25"])
    p.add_argument("--runtimes", nargs="+", default=["onnxruntime", "openvino"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pairs, labels = [], []
    for name in args.models:
        model = starquad.create_model(name).eval()
        x = torch.randn(1, *input_size_of(name), generator=torch.Generator().manual_seed(0))
        for runtime in args.runtimes:
            pairs.append(tuple(make_runner(model, runtime, x, args.threads, p) for p in ("fp32", "int8")))
            labels.append((name, runtime))
    timed = time_ratios(pairs, rounds=args.rounds, warmup=5, runs=args.runs, label="int8 vs float")
    rows = [{"model": name, "runtime": runtime, "float_ms": t["a_ms"], "int8_ms": t["b_ms"], "int8/float": t["ratio"],
             "speed-up": 1 / t["ratio"]} for (name, runtime), t in zip(labels, timed, strict=True)]  # fmt: skip
    print(f"CPU: {cpu_model()} (int8-relevant flags: {_int8_flags()}); {args.threads} thread(s), batch 1, "
          f"{args.rounds} interleaved rounds of {args.runs} calls per runner")  # fmt: skip
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
