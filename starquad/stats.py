"""Verdicts on the papers' claims from paired runs (used by the report sections and by the search comparison).

Every comparison in ``starquad reproduce`` trains both sides with the same seeds, so the runs pair up by
seed: the seed fixes the data subset, its order and the augmentation draws for both networks. The verdict
rests on the per-seed differences ``d_i = a_i − b_i`` and their **paired t interval** (95% by default):

    mean(d) ± t_{n−1, 1−α/2} · sd(d) / √n

Each claim declares ``δ``, its **smallest effect of interest** (e.g. 0.5 top-1 points): a difference smaller than
that does not matter for the claim. Four outcomes:

* ``held`` / ``contradicted``: the interval excludes 0 on the paper's side / on the other side (for a
  ``'similar'`` claim: lies inside ±δ / wholly outside it). A significant direction takes precedence; when its
  whole interval also lies inside ±δ the claim says so (``smaller_than_delta``).
* ``no effect at this scale``: a directional claim whose interval lies inside ±δ — equivalence by two one-sided
  tests, each at α/2, which is the same (1 − α) interval lying inside ±δ.
* ``not resolved at this scale``: none of these. Such a claim carries ``seeds_needed``: the seeds at which an
  interval from the observed mean and spread would resolve it with 80% power (a plug-in power calculation,
  :func:`seeds_needed`).

:class:`SeedPlan` is the sequential rule: a pilot of seeds, then more seeds for the claims still unresolved, up to
a maximum, with the confidence split over the planned looks (Bonferroni), so that looking several times does not
inflate the error rate; a claim that resolves stops, one that cannot resolve within the maximum stops too.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starquad.errors import ConfigError
from starquad.extras import require

__all__ = ["ACCURACY_DELTA", "CONTRADICTED", "HELD", "LATENCY_SHARE", "METHOD", "NOT_RESOLVED", "NO_EFFECT", "RESOLVED",
           "TOP1_DELTA", "SeedPlan", "judge", "paired_claim", "rejudge", "seeds_needed", "verdict_table"]  # fmt: skip

HELD, CONTRADICTED = "held", "contradicted"
NO_EFFECT, NOT_RESOLVED = "no effect at this scale", "not resolved at this scale"
RESOLVED = (HELD, CONTRADICTED, NO_EFFECT)
METHOD = ("paired t interval over seeds; no effect: the interval inside ±δ (two one-sided tests at α/2 each); "
          "seeds needed: plug-in power calculation, 80% power")  # fmt: skip
POWER = 0.8
# The smallest effects of interest that the report's claims declare (a section may declare its own):
TOP1_DELTA = 0.5  # top-1 points between two short Fashion-MNIST trainings of the same recipe
ACCURACY_DELTA = 1.0  # accuracy points on the toy problems (XOR, moons: one point is one or two samples)
LATENCY_SHARE = 0.02  # a timing claim: 2% of the baseline's time
MAX_SEEDS_NEEDED = 10_000  # beyond this the figure says "more than"
_EXPECTS = ("greater", "less", "similar")


def _t_quantile(p: float, df: int) -> float:
    return float(require("scipy.stats", "paired verdicts").t.ppf(p, df))


def _interval(diffs: Sequence[float], confidence: float) -> list[float] | None:
    n = len(diffs)
    if n < 2:
        return None
    mean = statistics.fmean(diffs)
    half = _t_quantile(0.5 + confidence / 2, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return [mean - half, mean + half]


def judge(ci: Sequence[float] | None, expect: str, delta: float) -> str:
    """The verdict of an interval ``ci`` (``None``: one seed) on a claim of direction ``expect`` with smallest
    effect of interest ``delta`` (see the module docstring)."""
    if ci is None:
        return NOT_RESOLVED
    lo, hi = ci
    if expect == "similar":
        if -delta < lo and hi < delta:
            return HELD
        return CONTRADICTED if lo > delta or hi < -delta else NOT_RESOLVED
    sign = 1 if expect == "greater" else -1
    lo_p, hi_p = sorted((sign * lo, sign * hi))  # in the paper's direction: > 0 means as the paper says
    if lo_p > 0:
        return HELD
    if hi_p < 0:
        return CONTRADICTED
    return NO_EFFECT if -delta < lo and hi < delta else NOT_RESOLVED


def seeds_needed(diffs: Sequence[float], expect: str, delta: float, confidence: float = 0.95,
                 power: float = POWER) -> int | None:  # fmt: skip
    """The smallest number of seeds at which the paired interval would resolve the claim with probability ``power``
    if the differences had the observed mean and standard deviation (plug-in power calculation, t quantiles at the
    planned size). ``None`` with fewer than two seeds (no spread to plan with); ``MAX_SEEDS_NEEDED + 1`` when even
    that many would not do (an effect of about zero that is also about δ away from the bounds).

    For a directional claim it is the fewer of what a significant direction needs (``|mean|`` beyond the half-width)
    and what *no effect* needs (the interval inside ±δ); for a ``'similar'`` claim, what *held* or *contradicted*
    needs (the interval on one side of δ).
    """
    if len(diffs) < 2:
        return None
    mean, sd = abs(statistics.fmean(diffs)), statistics.stdev(diffs)
    # the distance the interval's half-width must stay under
    gaps = [abs(mean - delta)] if expect == "similar" else [mean, delta - mean]
    gaps = [g for g in gaps if g > 0]
    if sd == 0:
        return len(diffs) if gaps else MAX_SEEDS_NEEDED + 1

    def resolves(n: int) -> bool:  # the half-width needed for power shrinks with n: bisect for the first n
        need = (_t_quantile(0.5 + confidence / 2, n - 1) + _t_quantile(power, n - 1)) * sd / math.sqrt(n)
        return any(need < g for g in gaps)

    lo, hi = 2, MAX_SEEDS_NEEDED + 1
    if not resolves(MAX_SEEDS_NEEDED):
        return hi
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if resolves(mid) else (mid + 1, hi)
    return lo


def paired_claim(claim: str, a: Sequence[float], b: Sequence[float], expect: str = "greater", *, delta: float,
                 labels: tuple[str, str] = ("a", "b"), confidence: float = 0.95,
                 paper: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The verdict on ``claim`` from runs ``a`` and ``b`` paired by position (the same seed at each index).

    Args:
        claim: the claim in words (shown in the report).
        a, b: one figure per seed for each side (e.g. top-1 %), the same seeds in the same order.
        expect: the paper's direction: ``'greater'`` (a > b), ``'less'`` (a < b) or ``'similar'``.
        delta: the smallest effect of interest (same unit as a, b; > 0): for ``'similar'``, the largest difference
            that still counts as similar.
        labels: names of the two sides.
        confidence: of the interval.
        paper: the paper's figure for the difference, in words (optional, shown beside ours).

    Returns:
        A JSON-able dict: ``claim``, ``a``, ``b`` (labels), ``expect``, ``n``, ``diffs``, ``mean_diff``,
        ``ci`` (``[low, high]``, ``None`` with one seed), ``confidence``, ``delta``, ``method``, ``verdict``,
        ``smaller_than_delta`` (a significant direction whose interval lies inside ±δ), ``seeds_needed`` (when not
        resolved; ``None`` with one seed), ``paper``.
    """
    if expect not in _EXPECTS:
        raise ValueError(f"expect must be one of {', '.join(_EXPECTS)}, got {expect!r}")
    if len(a) != len(b):
        raise ValueError(f"paired runs need the same number of seeds on both sides, got {len(a)} and {len(b)}")
    if not a:
        raise ValueError("paired_claim needs at least one pair of runs")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta > 0):
        raise ConfigError(f"delta (the smallest effect of interest) must be a positive number, got {delta!r}")
    diffs = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    return rejudge({"claim": claim, "a": labels[0], "b": labels[1], "expect": expect, "n": len(diffs),
                    "diffs": diffs, "mean_diff": statistics.fmean(diffs), "delta": float(delta), "method": METHOD,
                    "paper": paper}, confidence)  # fmt: skip


def rejudge(claim: dict[str, Any], confidence: float) -> dict[str, Any]:
    """``claim`` (from :func:`paired_claim`) with its interval, verdict and seeds-needed figure at ``confidence``."""
    ci = _interval(claim["diffs"], confidence)
    verdict = judge(ci, claim["expect"], claim["delta"])
    small = verdict in (HELD, CONTRADICTED) and claim["expect"] != "similar" and -claim["delta"] < ci[0] \
        and ci[1] < claim["delta"]  # fmt: skip
    needed = None if verdict in RESOLVED else seeds_needed(claim["diffs"], claim["expect"], claim["delta"], confidence)
    return {**claim, "ci": ci, "confidence": confidence, "verdict": verdict, "smaller_than_delta": bool(small),
            "seeds_needed": needed}  # fmt: skip


@dataclass(frozen=True)
class SeedPlan:
    """The sequential rule: ``pilot`` seeds, then ``step`` more at a time for the claims still unresolved, up to
    ``max_seeds``. The looks are planned in advance (:attr:`looks`), and each uses the confidence
    ``1 − (1 − confidence) / len(looks)`` (Bonferroni over the looks), so the whole procedure keeps its error rate
    however many looks a claim takes."""

    pilot: int
    max_seeds: int
    step: int
    confidence: float = 0.95

    def __post_init__(self):
        if not (isinstance(self.pilot, int) and self.pilot >= 2):
            raise ConfigError(f"the pilot needs at least 2 seeds (a spread to judge by), got {self.pilot!r}")
        if not (isinstance(self.max_seeds, int) and self.max_seeds >= self.pilot):
            raise ConfigError(f"the seed maximum ({self.max_seeds!r}) must be a whole number >= the pilot "
                              f"({self.pilot})")  # fmt: skip
        if not (isinstance(self.step, int) and self.step >= 1):
            raise ConfigError(f"seeds are added at least one at a time, got step {self.step!r}")
        if not 0 < self.confidence < 1:
            raise ConfigError(f"confidence must be between 0 and 1, got {self.confidence}")

    @property
    def looks(self) -> tuple[int, ...]:
        """The planned numbers of seeds at which claims are judged."""
        sizes = list(range(self.pilot, self.max_seeds, self.step))
        return (*sizes, self.max_seeds)

    @property
    def look_confidence(self) -> float:
        return 1 - (1 - self.confidence) / len(self.looks)

    def next_look(self, n: int) -> int | None:
        """The planned size after ``n`` seeds, ``None`` after the last."""
        return next((size for size in self.looks if size > n), None)

    def continues(self, claim: dict[str, Any]) -> bool:
        """Whether ``claim`` (judged at :attr:`look_confidence`) asks for more seeds: it is unresolved, a later look
        is planned, and the power calculation says the maximum could resolve it."""
        needed = claim.get("seeds_needed")
        return (claim["verdict"] not in RESOLVED and self.next_look(claim["n"]) is not None and needed is not None
                and needed <= self.max_seeds)  # fmt: skip


def _fmt_ci(c: dict[str, Any]) -> str:
    if c["ci"] is None:
        return "– (one seed)"
    return f"[{c['ci'][0]:+.2f}, {c['ci'][1]:+.2f}]"


def _fmt_verdict(c: dict[str, Any]) -> str:
    text = f"**{c['verdict']}**"
    if c.get("smaller_than_delta"):
        text += " (smaller than δ)"
    needed = c.get("seeds_needed")
    if c["verdict"] == NOT_RESOLVED and needed is not None:
        text += f"; needs {'more than ' + str(MAX_SEEDS_NEEDED) if needed > MAX_SEEDS_NEEDED else '≈ ' + str(needed)}" \
                " seeds"  # fmt: skip
    return text


_EXPECT_WORDS = {"greater": ">", "less": "<", "similar": "≈"}


def verdict_table(claims: Sequence[dict[str, Any]], section: str | None = None) -> str:
    """A Markdown table of verdicts (from :func:`paired_claim`), one row per claim."""
    head = ["section"] if section is None else []
    columns = [*head, "claim", "paper says", "n", "mean a − b", "interval", "δ", "paper", "verdict"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for c in claims:
        row = [c.get("section", "")] if section is None else []
        row += [c["claim"], f"{c['a']} {_EXPECT_WORDS[c['expect']]} {c['b']}", str(c["n"]), f"{c['mean_diff']:+.2f}",
                _fmt_ci(c) + f" ({c['confidence']:.1%})", f"{c['delta']:.3g}", c.get("paper") or "–",
                _fmt_verdict(c)]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
