import pytest
from scipy.stats import t as student_t
from scipy.stats import ttest_rel

from starquad.errors import ConfigError
from starquad.stats import (
    CONTRADICTED,
    HELD,
    MAX_SEEDS_NEEDED,
    NO_EFFECT,
    NOT_RESOLVED,
    SeedPlan,
    paired_claim,
    rejudge,
    seeds_needed,
    verdict_table,
)

A = [80.0, 81.5, 79.0, 80.2]


def test_interval_equals_scipy_paired_t():
    b = [78.1, 80.9, 78.2, 79.0]
    c = paired_claim("star beats sum", A, b, delta=0.5)
    ref = ttest_rel(A, b).confidence_interval(0.95)
    assert c["ci"] == pytest.approx([ref.low, ref.high], rel=1e-12)
    assert c["mean_diff"] == pytest.approx(sum(A) / 4 - sum(b) / 4)
    assert c["n"] == 4 and c["method"].startswith("paired t") and c["delta"] == 0.5


@pytest.mark.parametrize(
    "b, expect, verdict",
    [
        ([78.0, 79.4, 77.1, 78.3], "greater", HELD),  # a ahead by ≈2 every seed
        ([78.0, 79.4, 77.1, 78.3], "less", CONTRADICTED),  # the same data, the paper says the opposite
        ([82.0, 83.4, 81.1, 82.3], "greater", CONTRADICTED),
        ([79.9, 81.6, 78.85, 80.25], "greater", NO_EFFECT),  # differences +0.1, −0.1, +0.15, −0.05: inside ±0.5
        ([79.0, 82.5, 78.0, 81.2], "greater", NOT_RESOLVED),  # differences +1, −1, +1, −1: wider than ±0.5
        ([80.1, 81.3, 79.2, 80.1], "similar", HELD),  # within ±0.2 of each other
        ([75.0, 76.6, 74.1, 75.1], "similar", CONTRADICTED),  # ≈5 apart, δ 0.5
        ([79.0, 82.5, 78.0, 81.2], "similar", NOT_RESOLVED),  # interval wider than δ
    ],
)
def test_all_four_verdicts(b, expect, verdict):
    c = paired_claim("claim", A, b, expect, delta=0.5)
    assert c["verdict"] == verdict
    assert (c["seeds_needed"] is None) == (verdict != NOT_RESOLVED)


def test_a_significant_direction_takes_precedence_and_says_when_it_is_small():
    c = paired_claim("claim", [1.10, 1.12, 1.11, 1.13], [1.0, 1.0, 1.0, 1.0], delta=0.5)  # +0.1 to +0.13
    assert c["verdict"] == HELD and c["smaller_than_delta"]
    assert "held** (smaller than δ)" in verdict_table([c])
    assert not paired_claim("claim", A, [78.0, 79.4, 77.1, 78.3], delta=0.5)["smaller_than_delta"]


def test_one_seed_is_never_a_verdict():
    c = paired_claim("claim", [90.0], [10.0], delta=0.5)
    assert c["ci"] is None and c["verdict"] == NOT_RESOLVED and c["seeds_needed"] is None


def test_equal_differences_give_a_point_interval():
    c = paired_claim("claim", [2.0, 3.0], [1.0, 2.0], delta=0.5)
    assert c["ci"] == [1.0, 1.0] and c["verdict"] == HELD


def test_seeds_needed_matches_the_textbook_and_is_the_first_size_with_the_power():
    # effect size 1 (mean = sd), 80% power, two-sided 5%: the paired t test needs 10 (the standard table's figure)
    diffs = [1.0 + x for x in (-1.2247448713915890, 1.2247448713915890, 0.0, 0.0)]  # mean 1, sd 1
    assert sum(diffs) / 4 == pytest.approx(1.0)
    n = seeds_needed(diffs, "greater", delta=0.1)
    assert n == 10

    def half_width(k):  # the planning half-width at k seeds, sd 1
        return (student_t.ppf(0.975, k - 1) + student_t.ppf(0.8, k - 1)) / k**0.5

    assert half_width(n) < 1.0 <= half_width(n - 1)


def test_seeds_needed_for_no_effect_and_the_impossible():
    near_zero = [0.1, -0.1, 0.05, -0.05]  # mean 0: no direction to find, but ±0.5 is within reach soon
    assert seeds_needed(near_zero, "greater", delta=0.5) <= 4
    assert seeds_needed([0.0, 0.0], "greater", delta=0.5) == 2
    on_the_bound = [0.5 + x for x in (-0.3, 0.3, 0.0)]  # mean exactly δ: a ≈ claim can never be decided
    assert seeds_needed(on_the_bound, "similar", delta=0.5) == MAX_SEEDS_NEEDED + 1
    assert seeds_needed(on_the_bound, "greater", delta=0.5) < 10  # while its direction shows soon


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same number of seeds"):
        paired_claim("claim", [1.0, 2.0], [1.0], delta=0.5)
    with pytest.raises(ValueError, match="expect must be one of"):
        paired_claim("claim", [1.0], [1.0], "bigger", delta=0.5)
    for bad in (0, -1.0, float("nan"), float("inf"), "0.5"):
        with pytest.raises(ConfigError, match="delta"):
            paired_claim("claim", [1.0], [1.0], delta=bad)


def test_table_lists_every_claim_with_delta_and_seeds_needed():
    claims = [
        dict(paired_claim("x beats y", A, A[::-1], delta=0.5), section="s1"),
        dict(paired_claim("z", [1.0], [0.0], delta=0.25), section="s2"),
    ]
    table = verdict_table(claims)
    assert table.count("\n") == 3 and "| s1 | x beats y |" in table and "– (one seed)" in table
    assert "| 0.25 |" in table and "needs ≈" in table


def test_seed_plan_looks_and_confidence():
    plan = SeedPlan(pilot=3, max_seeds=6, step=3)
    assert plan.looks == (3, 6) and plan.look_confidence == pytest.approx(0.975)
    assert SeedPlan(pilot=5, max_seeds=15, step=5).looks == (5, 10, 15)
    assert SeedPlan(pilot=3, max_seeds=8, step=3).looks == (3, 6, 8)
    assert plan.next_look(3) == 6 and plan.next_look(6) is None


def test_sequential_rule_stops_resolved_and_hopeless_claims():
    plan = SeedPlan(pilot=3, max_seeds=6, step=3)
    conf = plan.look_confidence
    resolved = rejudge(paired_claim("clear", [3.0, 3.1, 2.9], [0.0, 0.0, 0.0], delta=0.5), conf)
    promising = rejudge(paired_claim("close", [1.0, 0.7, 1.3], [0.0, 0.0, 0.0], delta=0.5), conf)
    hopeless = rejudge(paired_claim("tiny", [0.3, -0.5, 0.9], [0.0, 0.0, 0.0], delta=0.5), conf)
    assert resolved["verdict"] == HELD and not plan.continues(resolved)
    assert promising["verdict"] == NOT_RESOLVED and promising["seeds_needed"] <= 6 and plan.continues(promising)
    assert hopeless["verdict"] == NOT_RESOLVED and hopeless["seeds_needed"] > 6 and not plan.continues(hopeless)
    at_max = rejudge(paired_claim("close", [1.0, 0.7, 1.3, 0.2, 1.9, -0.4], [0.0] * 6, delta=0.5), conf)
    assert at_max["verdict"] == NOT_RESOLVED and not plan.continues(at_max)  # no look left after the maximum


@pytest.mark.parametrize("kwargs, match", [
    (dict(pilot=1, max_seeds=6, step=3), "pilot needs at least 2"),
    (dict(pilot=3, max_seeds=2, step=1), "maximum"),
    (dict(pilot=3, max_seeds=6, step=0), "at least one at a time"),
    (dict(pilot=3, max_seeds=6.5, step=1), "maximum"),
    (dict(pilot=3, max_seeds=6, step=3, confidence=1.5), "confidence"),
])  # fmt: skip
def test_seed_plan_rejects_what_makes_no_sense(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SeedPlan(**kwargs)

