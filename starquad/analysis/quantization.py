"""int8 on trained networks: does the star or quadratic product survive post-training quantization?

StarNet's users asked its authors for int8 (ma-xu/Rewrite-the-Stars issue 10); the authors had not tried it, and a
user guessed the star product "not friendly for quantization" (the product of two activations spans a far wider
range than either). This section answers with numbers, on the networks the other sections train (their weights
kept): the recipe's StarNet (the ablations' network), QuadraNet (the quadranet section's), and DemoNet with star and
with sum fusion (the demonet section's middle network; sum has no product and is the control).

Each seed's model is quantized for ONNX Runtime by :func:`starquad.deploy.int8.quantize_int8`: per-channel int8
weights, activations calibrated on training images, each product's output SQNR measured and the products that cost
accuracy on a selection set of other training images kept in float (aiming at the claims' δ). Float and int8 top-1
are both measured on the whole test split through ONNX Runtime (one thread: the same numbers on any machine) and
paired per seed; the claim "int8 keeps top-1 within δ" is judged like every other claim. The all-int8 drop (every
product quantized) is reported beside the shipped choice's. Latency: the float and int8 files of one seed, batch 1,
timed against each other in interleaved blocks (:func:`starquad.bench.latency.time_ratios`).
"""

from __future__ import annotations

import logging
import statistics
from typing import Any

from starquad.analysis import ablations, demonet, quadranet
from starquad.analysis.fmnist import budget_for, fmnist_run, mean_std, seeds_for
from starquad.analysis.report import SectionContext, SectionResult, register_section
from starquad.stats import paired_claim

__all__ = ["CALIB_N", "EVAL_N", "SELECT_N", "networks"]

_LOG = logging.getLogger(__name__)
CALIB_N, SELECT_N = 256, 1000  # calibration images; selection images (other training images) for the choice
EVAL_N = None  # test images: the whole split
_ISSUE = "ma-xu/Rewrite-the-Stars issue 10: int8 untried; 'seems not friendly for quantization'"


def networks(full: bool) -> dict[str, dict[str, Any]]:
    """The section's networks: model name, options, input side, budget overrides, whether it has products."""
    width, depth = demonet.mid_config(full)
    demo = dict(patch_size=4, width=width, depth=depth)
    return {
        "StarNet": dict(model=ablations.MODEL, kwargs=ablations.BASE_KWARGS, size=28, budget={}, products=True),
        "QuadraNet": dict(model="quadranet_t25", kwargs=quadranet.SMALL, size=32, budget={}, products=True,
                          overrides={"img_size": 32}),
        "DemoNet star": dict(model="demonet_d12_w96", kwargs={**demo, "fusion": "star"}, size=28,
                             budget={"lr": demonet.LR}, products=True),
        "DemoNet sum": dict(model="demonet_d12_w96", kwargs={**demo, "fusion": "sum"}, size=28,
                            budget={"lr": demonet.LR}, products=False),
    }  # fmt: skip


def _quantized(ctx: SectionContext, net: dict[str, Any], weights: str, seed: int) -> tuple[Any, Any, Any]:
    """(float model, int8 ONNX bytes, Int8Result) of one trained run."""
    from starquad.deploy.int8 import quantize_int8
    from starquad.models import create_model, load_checkpoint

    model = create_model(net["model"], num_classes=10, in_chans=1, **net["kwargs"])
    load_checkpoint(model, weights)
    shipped, result = quantize_int8(model.eval(), (1, net["size"], net["size"]), calib="fashion-mnist",
                                    calib_n=CALIB_N, select_n=SELECT_N, eval_n=EVAL_N, max_drop=ctx.top1_delta,
                                    data_dir=ctx.data_dir, resize=net["size"] != 28, seed=seed, threads=1,
                                    log=_LOG.debug)  # fmt: skip
    return model, shipped, result


def _latency(ctx: SectionContext, pairs: dict[str, tuple[Any, Any, int]]) -> dict[str, dict[str, float]]:
    """Float vs int8 ONNX Runtime latency (batch 1, one thread) of one trained model per network."""
    import torch

    from starquad.bench.backends import make_runner
    from starquad.bench.latency import time_ratios

    runners, names = [], []
    for name, (model, shipped, size) in pairs.items():
        x = torch.randn(1, 1, size, size, generator=torch.Generator().manual_seed(ctx.seed))
        runners.append((make_runner(model, "onnxruntime", x, 1), make_runner(shipped, "onnxruntime", x, 1, "int8")))
        names.append(name)
    rounds = 20 if ctx.full else 10
    timed = time_ratios(runners, rounds=rounds, seed=ctx.seed, label="int8 vs float")
    return {n: {"float_ms": t["a_ms"], "int8_ms": t["b_ms"], "latency_ratio": t["ratio"]}
            for n, t in zip(names, timed, strict=True)}  # fmt: skip


@register_section("quantization", "int8 on trained networks: the star and quadratic products (StarNet issue 10)",
                  order=58, seeded=True)
def quantization_section(ctx: SectionContext) -> SectionResult:
    nets = networks(ctx.full)
    runs = {}
    for name, net in nets.items():
        budget = budget_for(ctx, **net["budget"])
        runs[name] = [fmnist_run(ctx, net["model"], net["kwargs"], s, budget, keep_weights=True,
                                 **net.get("overrides", {})) for s in seeds_for(ctx, budget)]  # fmt: skip
    if ctx.collecting:
        return SectionResult({}, "")
    seeds = seeds_for(ctx, budget_for(ctx))
    results, claims, timing = {}, [], {}
    for name, net in nets.items():
        measured = [_quantized(ctx, net, r["weights"], s) for r, s in zip(runs[name], seeds, strict=True)]
        timing[name] = (measured[0][0], measured[0][1], net["size"])
        res = [m[2] for m in measured]
        results[name] = {
            "model": net["model"], "model_kwargs": net["kwargs"], "img_size": net["size"], "seeds": seeds,
            "top1_float": [r.top1_float for r in res], "top1_int8": [r.top1_int8 for r in res],
            "drop": [r.drop for r in res], "drop_all_quantized": [r.drop_all_quantized for r in res],
            "products": len(res[0].products),
            "kept_float": [[p.module or p.node for p in r.products if p.kept_float] for r in res],
            "sqnr_db": [{p.module or p.node: p.sqnr_db for p in r.products} for r in res],
            "top1_train": [r["top1"] for r in runs[name]],
        }  # fmt: skip
        if net["products"]:
            claims.append(paired_claim(f"int8 keeps {name}'s top-1 within δ of float (ONNX Runtime, per-product "
                                       "choice)", results[name]["top1_int8"], results[name]["top1_float"],
                                       "similar", labels=("int8", "float"), delta=ctx.top1_delta,
                                       paper=_ISSUE if name == "StarNet" else None,
                                       confidence=ctx.confidence))  # fmt: skip
    for name, t in _latency(ctx, timing).items():
        results[name].update(t)
    return SectionResult({"networks": results, "calib_n": CALIB_N, "select_n": SELECT_N},
                         _markdown(results, ctx, len(seeds)), claims=claims)  # fmt: skip


def _markdown(results: dict[str, dict[str, Any]], ctx: SectionContext, n: int) -> str:
    md = [
        f"Trained networks (the other sections' runs, {n} seeds) quantized to int8 for ONNX Runtime: per-channel "
        f"int8 weights, activations calibrated on {CALIB_N} training images, the products that cost more than "
        f"δ = {ctx.top1_delta:g} points on {SELECT_N} other training images kept in float (least SQNR first). Top-1 "
        "on the whole Fashion-MNIST test split, mean ± std over seeds; latency: batch 1, one thread, this machine.",
        "",
        "| network | products | float top-1 | int8 top-1 | drop | drop, every product int8 | "
        "kept in float (any seed) | lowest product SQNR | int8/float latency |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        drop, drop_all = mean_std(r["drop"]), mean_std(r["drop_all_quantized"])
        kept = sorted({k for seed in r["kept_float"] for k in seed})
        lowest = min((v for seed in r["sqnr_db"] for v in seed.values() if v is not None), default=None)
        md.append(f"| {name} | {r['products']} | {statistics.fmean(r['top1_float']):.2f} | "
                  f"{statistics.fmean(r['top1_int8']):.2f} | {drop[0]:+.2f} ± {drop[1]:.2f} | "
                  f"{drop_all[0]:+.2f} ± {drop_all[1]:.2f} | {', '.join(kept) or 'none'} | "
                  f"{'—' if lowest is None else f'{lowest:.1f} dB'} | {r['latency_ratio']:.2f} |")  # fmt: skip
    md += ["", "Drops are float − int8 in top-1 points (negative: int8 scored higher). A product's SQNR is its "
           "output's signal-to-quantization-noise ratio in the all-int8 model against the float model's."]  # fmt: skip
    return "\n".join(md)
