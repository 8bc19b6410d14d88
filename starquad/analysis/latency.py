"""Latency on this machine: StarNet against the StarNet paper's mobile peers, with the accuracy–latency plot
(StarNet Table 6 CPU column / Fig. 4 analog), measured by :func:`starquad.bench.suite.bench_latency`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from starquad.analysis.report import SectionContext, SectionResult, figure, register_section
from starquad.extras import install_hint, installed

__all__ = ["LATENCY_MODELS"]

LATENCY_MODELS = (
    *("starnet_s050", "starnet_s1", "starnet_s2", "starnet_s3", "starnet_s4"),
    *("mobileone_s0", "mobileone_s1", "mobileone_s2", "mobilenetv2_100", "mobilenetv2_140"),
    *("mobilenetv3_large_100", "ghostnet_100", "efficientnet_b0", "fasternet_t0", "fasternet_t1"),
)

COLUMNS = ["model", "ms", "p10_ms", "p90_ms", "paper_cpu_ms", "params_m", "macs_m", "top1", "gflops", "roofline_pct"]


@register_section("latency", "Latency on this machine (StarNet Table 6 / Fig. 4 analog)", order=60)
def latency_section(ctx: SectionContext) -> SectionResult:
    import torch

    from starquad.bench import markdown_table
    from starquad.bench.plot import plot_accuracy_latency
    from starquad.bench.published import paper_cpu_ms
    from starquad.bench.suite import PAPER_PROTOCOL, LatencyConfig, bench_latency

    threads = torch.get_num_threads()
    cfg = dataclasses.replace(LatencyConfig(threads=threads, roofline=True), **PAPER_PROTOCOL)
    if not ctx.full:
        cfg = dataclasses.replace(cfg, warmup=10, runs=50)
    rows = bench_latency(LATENCY_MODELS, cfg)
    for r in rows:
        r["paper_cpu_ms"] = paper_cpu_ms(r["model"])
    fig = ctx.figure_path("latency", "accuracy_vs_latency")
    plot_accuracy_latency(rows, fig, title=f"ImageNet top-1 vs ONNX Runtime latency ({threads} threads, batch 1)")
    star = {r["model"]: r["ms"] for r in rows if r["model"].startswith("starnet")}
    peers = [r for r in rows if not r["model"].startswith("starnet") and r["top1"] is not None]
    top1 = {r["model"]: r["top1"] for r in rows}
    pairs = [(s, p["model"]) for s, ms in star.items() for p in peers if ms < p["ms"] and top1[s] >= p["top1"]]
    faster_and_better = sorted(f"{s} vs {p}" for s, p in pairs)
    md = [
        f"ONNX Runtime (CPU provider, ORT_ENABLE_ALL, {threads} intra-op threads), batch 1, 224², mean of {cfg.runs} "
        f"runs after {cfg.warmup} warm-up (the paper: mean of 500 after 50, on a Xeon E5-2680v4). Models are "
        "re-parameterised first (MobileOne branches merged, StarNet BatchNorm folded). top-1 is the published "
        "ImageNet figure; roofline % is the achieved conv/linear GFLOP/s over this machine's ONNX Runtime GEMM peak.",
        "",
        markdown_table(rows, COLUMNS),
        "",
        f"StarNet variants faster than a peer with at least its top-1: {len(faster_and_better)} of "
        f"{len(star) * len(peers)} pairs: {', '.join(faster_and_better) or 'none'}.",
    ]
    results = {"rows": rows, "protocol": dataclasses.asdict(cfg), "faster_and_at_least_as_accurate": faster_and_better}
    return SectionResult(results, "\n".join(md), figures=[fig])


STAR_LATENCY_MODELS = ("starnet_s1", "starnet_s2", "starnet_s3", "starnet_s4")
PAPER_TABLE8_CPU = {"starnet_s4": {"star": 9.4, "sum": 8.4}}  # ms; GPU and iPhone: no difference


def _available_backends() -> tuple[list[str], dict[str, str]]:
    from starquad.bench.backends import BACKENDS

    ok, missing = [], {}
    for b in BACKENDS:
        if b == "openvino" and not installed("openvino"):
            missing[b] = install_hint("openvino", "the openvino backend")
        else:
            ok.append(b)
    return ok, missing


@register_section("star_latency", "Star vs sum latency on every backend (StarNet Table 8 analog)", order=62)
def star_latency_section(ctx: SectionContext) -> SectionResult:
    """StarNet S4 (--full: S1–S4) with star fusion and the same networks with every star replaced by a sum, on
    every latency backend of this install. Each star network is timed against its sum twin visit by visit
    (:func:`starquad.bench.latency.time_pairs`): a visit times a block of star calls and a block of sum calls
    back to back, so both see the same load of the machine, and the visits of all (model, backend) pairs come in
    a fresh random order each round.
    Batch 1, 224², the report's torch threads."""
    import statistics

    import torch

    from starquad.bench.backends import BACKEND_TABLE, deployable, make_runner
    from starquad.bench.latency import time_pairs
    from starquad.models import create_model
    from starquad.runtime import torch_threads
    from starquad.stats import LATENCY_SHARE, paired_claim

    threads = torch.get_num_threads()
    backends, missing = _available_backends()
    # --quick: the paper's S4 only (compiling a network for the compile and aoti backends takes 10–25 s here);
    # 30 rounds of 5 calls per side: round-to-round pairs of star and sum at 30 rounds resolve a 2% share on most
    # backends of a 2-core host, where 5 interleaved rounds of whole runner passes resolved none
    models = STAR_LATENCY_MODELS if ctx.full else STAR_LATENCY_MODELS[-1:]
    rounds, runs, warmup = (60, 10, 2) if ctx.full else (30, 5, 2)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(ctx.seed))
    items, pairs = [], []
    with torch_threads(threads):
        for name in models:
            twins = {}
            for fusion in ("star", "sum"):
                torch.manual_seed(ctx.seed)
                twins[fusion] = create_model(name, fusion=fusion).eval()
            exported = {}  # one export serves every ONNX runtime (the same inference form for all of them)
            for backend in backends:
                runners = []
                for fusion, model in twins.items():
                    if BACKEND_TABLE[backend].onnx:
                        exported[fusion] = exported.get(fusion) or deployable(model, backend, x)
                    runners.append(make_runner(exported[fusion] if BACKEND_TABLE[backend].onnx else model, backend,
                                               x, threads))  # fmt: skip
                items.append((name, backend))
                pairs.append(tuple(runners))
        timed = time_pairs(pairs, rounds=rounds, warmup=warmup, runs=runs, seed=ctx.seed, label="star vs sum")
    by = dict(zip(items, timed, strict=True))
    rows, claims = [], []
    for backend in backends:
        for name in models:
            t = by[(name, backend)]
            rows.append({"backend": backend, "model": name, "star_ms": t["a_ms"], "sum_ms": t["b_ms"],
                         "star_over_sum": t["a_ms"] / t["b_ms"],
                         "paper_cpu_star_over_sum": (PAPER_TABLE8_CPU[name]["star"] / PAPER_TABLE8_CPU[name]["sum"]
                                                     if name in PAPER_TABLE8_CPU else None)})  # fmt: skip
        s4 = by[(models[-1], backend)]
        claims.append(paired_claim(f"star costs extra CPU latency over sum ({models[-1]}, {backend}; ms per round)",
                                   s4["a_round_ms"], s4["b_round_ms"], labels=("star", "sum"),
                                   paper="9.4 vs 8.4 ms (+1.0)", confidence=ctx.confidence,
                                   delta=LATENCY_SHARE * s4["b_ms"]))  # fmt: skip
    geo = {b: statistics.geometric_mean(r["star_over_sum"] for r in rows if r["backend"] == b) for b in backends}
    md = [
        f"StarNet {', '.join(models)} and the same networks with every star replaced by a sum, batch 1, 224², "
        f"{threads} threads, "
        f"on {', '.join(backends)}{' (' + '; '.join(f'{b}: {w}' for b, w in missing.items()) + ')' if missing else ''}"
        f". Each star network timed against its sum twin: {rounds} rounds, each visiting all {len(pairs)} (model, "
        f"backend) pairs in a fresh random order; a visit times star and sum back to back (which first is drawn), "
        f"each as {warmup} warm-up and {runs} timed calls; the figure is the median of all calls, a claim pairs "
        "the visits' medians. "
        "The paper's Table 8 (CPU): S4 star 9.4 ms vs sum 8.4 ms (×1.12); no difference on GPU or iPhone.",
        "",
        "| backend | model | star (ms) | sum (ms) | star / sum | paper CPU star / sum |",
        "|---|---|---|---|---|---|",
        *[f"| {r['backend']} | {r['model']} | {r['star_ms']:.2f} | {r['sum_ms']:.2f} | {r['star_over_sum']:.3f} | "
          + (f"{r['paper_cpu_star_over_sum']:.3f}" if r["paper_cpu_star_over_sum"] else "–") + " |" for r in rows],
        "",
        "**Claims:** star / sum latency (geometric mean over the models): "
        + ", ".join(f"{b} ×{g:.3f}" for b, g in geo.items())
        + f" (paper CPU ×{9.4 / 8.4:.3f} for S4). Paired over rounds, S4 star slower than sum: "
        + ", ".join(f"{b} {c['verdict']}" for b, c in zip(backends, claims, strict=True)) + ".",
    ]  # fmt: skip
    results = {"rows": rows, "star_over_sum_geomean": geo, "backends": backends, "missing_backends": missing,
               "protocol": {"rounds": rounds, "runs": runs, "warmup": warmup, "paired": "visit by visit, blocks",
                            "threads": threads, "batch": 1, "img_size": 224}}  # fmt: skip
    fig = ctx.figure_path("star_latency", "ratios")
    _plot_star_over_sum(rows, backends, models, fig)
    md.append("The figure: star / sum per backend and model; the dashed line is the paper's CPU ratio for S4, the "
              "dotted one no difference.")  # fmt: skip
    return SectionResult(results, "\n".join(md), figures=[fig], claims=claims)


def _plot_star_over_sum(rows: list[dict], backends: list[str], models: Sequence[str], path) -> None:
    """Grouped bars: one group per backend, one bar per model, height star / sum."""
    width = 0.8 / len(models)
    with figure(path, figsize=(6.0, 3.6)) as ax:
        for i, name in enumerate(models):
            heights = [next(r["star_over_sum"] for r in rows if r["backend"] == b and r["model"] == name)
                       for b in backends]  # fmt: skip
            ax.bar([j + (i - (len(models) - 1) / 2) * width for j in range(len(backends))], heights, width,
                   label=name)  # fmt: skip
        ax.axhline(PAPER_TABLE8_CPU["starnet_s4"]["star"] / PAPER_TABLE8_CPU["starnet_s4"]["sum"], color="k",
                   linestyle="--", linewidth=1, label="paper CPU, S4")  # fmt: skip
        ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.set_xticks(range(len(backends)), backends)
        ax.set_ylabel("latency star / sum")
        ratios = [r["star_over_sum"] for r in rows]
        ax.set_ylim(min(0.85, min(ratios) - 0.02), max(1.2, max(ratios) + 0.02))
        ax.set_title("Star vs sum latency, batch 1, 224²")
        ax.legend(fontsize=8, ncol=2)
