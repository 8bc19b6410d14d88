"""Hardware-aware search on this machine (QuadraNet §NAS, reduced): the latency model's accuracy on held-out
networks, and a search whose derived network is timed against its budget, beside a random network under the
same budget."""

from __future__ import annotations

import dataclasses

from starquad.analysis.report import SectionContext, SectionResult, register_section

__all__: list[str] = []


@register_section("nas", "Hardware-aware search: the latency model and a budgeted search (QuadraNet §NAS)", order=70)
def nas_section(ctx: SectionContext) -> SectionResult:
    from starquad.analysis.nas_compare import random_under_budget
    from starquad.bench import markdown_table
    from starquad.nas.config import QUICK_SEARCH, SearchConfig
    from starquad.nas.latency import Protocol, build_table, latency_percentiles, plot_validation, validate_table
    from starquad.nas.search import search
    from starquad.nas.space import get_space

    space = get_space("quadranet")
    # --quick: a small table and a short search, a quarter of `nas search --quick`'s training (the section shows the
    # pipeline end to end; its figures are the full report's)
    report_search = {**QUICK_SEARCH, "epochs": 2, "subset": 3000}
    protocol = Protocol() if ctx.full else Protocol(rounds=2, retries=0)
    table = build_table(space, protocol, fit_archs=60 if ctx.full else 12, seed=ctx.seed)
    table_path = table.save(ctx.out_dir / "nas" / "quadranet_table.json")
    val = validate_table(table, n=300 if ctx.full else 20, seed=ctx.seed + 1000)
    fig = ctx.figure_path("nas", "predicted_vs_measured")
    plot_validation(val, fig)
    budget = latency_percentiles(table, space, [50])[0]
    base = SearchConfig(space="quadranet", budget_ms=budget, table=str(table_path), seed=ctx.seed,
                        data_dir=str(ctx.data_dir) if ctx.data_dir else None,
                        **({} if ctx.full else report_search))  # fmt: skip
    found = search(dataclasses.replace(base, out=str(ctx.out_dir / "nas" / "search")))
    rand = random_under_budget(dataclasses.replace(base, out=str(ctx.out_dir / "nas" / "random")), lambda m: None)
    rows = [{"network": name, "budget_ms": round(budget, 4), "predicted_ms": round(r["predicted_ms"], 4),
             "measured_ms": round(r["measured_ms"], 4), "measured/budget": round(r["measured_ms"] / budget, 3),
             "in [0.9, 1]×budget": r["in_band"], "skips": r["skips"]}
            for name, r in (("searched", found), ("random", rand))]  # fmt: skip
    figures = {k: val[k] for k in ("n", "within_5pct", "within_10pct", "mape", "spearman", "kendall",
                                   "retest_spearman")}  # fmt: skip
    md = [
        f"Latency table of the `quadranet` space on this machine ({protocol.runtime}, {protocol.threads} thread, "
        f"{protocol.img_size}² input; {protocol.rounds} interleaved rounds of {protocol.runs} timed calls; correction "
        f"fitted on {table.fit['archs']} networks; built in {table.fit['build_seconds']:.0f} s). On {val['n']} "
        f"held-out networks: {100 * val['within_10pct']:.1f}% within ±10%, {100 * val['within_5pct']:.1f}% within "
        f"±5%, MAPE {100 * val['mape']:.1f}%, Spearman {val['spearman']:.3f} (test–retest "
        f"{val['retest_spearman']:.3f}); the plain sum of entries: MAPE {100 * val['naive']['mape']:.1f}%.",
        "",
        f"A search at the median latency of the space ({budget:.4f} ms), its derived network measured, beside a "
        f"random network derived under the same budget; the searched network's one-shot (supernet) top-1 on "
        f"Fashion-MNIST: {found['one_shot_top1']:.1f}%.",
        "",
        markdown_table(rows),
    ]
    results = {"validation": figures, "naive_mape": val["naive"]["mape"], "budget_ms": budget, "rows": rows,
               "search": {k: found[k] for k in ("arch", "ops", "measured_ms", "predicted_ms", "budget_met",
                                                "in_band", "skips", "one_shot_top1", "seconds")}}  # fmt: skip
    return SectionResult(results, "\n".join(md), figures=[fig])
