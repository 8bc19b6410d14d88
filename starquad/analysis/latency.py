"""Latency on this machine: StarNet against the StarNet paper's mobile peers, with the accuracy–latency plot
(StarNet Table 6 CPU column / Fig. 4 analog), measured by :func:`starquad.bench.suite.bench_latency`."""

from __future__ import annotations

import dataclasses

from starquad.analysis.report import SectionContext, SectionResult, register_section

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
        cfg = dataclasses.replace(cfg, warmup=20, runs=100)
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
