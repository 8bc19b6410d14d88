"""Verdicts on the papers' claims from paired runs (used by the report sections and by the search comparison).

Every comparison in ``starquad reproduce`` trains both sides with the same seeds, so the runs pair up by
seed: the seed fixes the data subset, its order and the augmentation draws for both networks. The verdict
rests on the per-seed differences ``d_i = a_i − b_i`` and their **paired t interval** (95% by default):

    mean(d) ± t_{n−1, 0.975} · sd(d) / √n

A claim names the direction the paper reports:

* ``'greater'`` (a > b) or ``'less'`` (a < b): ``held`` when the interval excludes 0 on the paper's side,
  ``contradicted`` when it excludes 0 on the other side, ``not resolved at this scale`` when it contains 0;
* ``'similar'`` (|a − b| small): ``held`` when the whole interval lies inside ``±margin``, ``contradicted``
  when it lies wholly outside it (the two are clearly different), else ``not resolved at this scale``
  (an equivalence test in the two-one-sided-tests sense at the same confidence).

With one seed there is no spread and so no interval: the verdict is ``not resolved at this scale``. With
several seeds whose differences are all equal, the interval is that single value.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["CONTRADICTED", "HELD", "METHOD", "NOT_RESOLVED", "paired_claim", "verdict_table"]

HELD, CONTRADICTED, NOT_RESOLVED = "held", "contradicted", "not resolved at this scale"
METHOD = "paired t interval over seeds"
_EXPECTS = ("greater", "less", "similar")


def _t_quantile(p: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(p, df))


def paired_claim(claim: str, a: Sequence[float], b: Sequence[float], expect: str = "greater", *,
                 labels: tuple[str, str] = ("a", "b"), confidence: float = 0.95, margin: float = 1.0,
                 paper: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The verdict on ``claim`` from runs ``a`` and ``b`` paired by position (the same seed at each index).

    Args:
        claim: the claim in words (shown in the report).
        a, b: one figure per seed for each side (e.g. top-1 %), the same seeds in the same order.
        expect: the paper's direction: ``'greater'`` (a > b), ``'less'`` (a < b) or ``'similar'``.
        labels: names of the two sides.
        confidence: of the interval.
        margin: for ``'similar'``: the largest difference that still counts as similar (same unit as a, b).
        paper: the paper's figure for the difference, in words (optional, shown beside ours).

    Returns:
        A JSON-able dict: ``claim``, ``a``, ``b`` (labels), ``expect``, ``n``, ``diffs``, ``mean_diff``,
        ``ci`` (``[low, high]``, ``None`` with one seed), ``confidence``, ``method``, ``verdict``.
    """
    if expect not in _EXPECTS:
        raise ValueError(f"expect must be one of {', '.join(_EXPECTS)}, got {expect!r}")
    if len(a) != len(b):
        raise ValueError(f"paired runs need the same number of seeds on both sides, got {len(a)} and {len(b)}")
    if not a:
        raise ValueError("paired_claim needs at least one pair of runs")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    diffs = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    n, mean = len(diffs), statistics.fmean(diffs)
    ci = None
    if n > 1:
        half = _t_quantile(0.5 + confidence / 2, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
        ci = [mean - half, mean + half]
    verdict = NOT_RESOLVED
    if ci is not None:
        lo, hi = ci
        if expect == "similar":
            if -margin < lo and hi < margin:
                verdict = HELD
            elif lo > margin or hi < -margin:
                verdict = CONTRADICTED
        else:
            sign = 1 if expect == "greater" else -1
            lo, hi = sorted((sign * lo, sign * hi))  # in the paper's direction: > 0 means as the paper says
            if lo > 0:
                verdict = HELD
            elif hi < 0:
                verdict = CONTRADICTED
    return {"claim": claim, "a": labels[0], "b": labels[1], "expect": expect, "n": n, "diffs": diffs,
            "mean_diff": mean, "ci": ci, "confidence": confidence, "margin": margin if expect == "similar" else None,
            "method": METHOD, "verdict": verdict, "paper": paper}  # fmt: skip


def _fmt_ci(c: dict[str, Any]) -> str:
    if c["ci"] is None:
        return "– (one seed)"
    return f"[{c['ci'][0]:+.2f}, {c['ci'][1]:+.2f}]"


_EXPECT_WORDS = {"greater": ">", "less": "<", "similar": "≈"}


def verdict_table(claims: Sequence[dict[str, Any]], section: str | None = None) -> str:
    """A Markdown table of verdicts (from :func:`paired_claim`), one row per claim."""
    head = ["section"] if section is None else []
    lines = [
        "| " + " | ".join([*head, "claim", "paper says", "n", "mean a − b", "95% interval", "paper", "verdict"]) + " |",
        "|" + "---|" * (len(head) + 7),
    ]
    for c in claims:
        row = [c.get("section", "")] if section is None else []
        row += [c["claim"], f"{c['a']} {_EXPECT_WORDS[c['expect']]} {c['b']}", str(c["n"]), f"{c['mean_diff']:+.2f}",
                _fmt_ci(c), c.get("paper") or "–", f"**{c['verdict']}**"]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
