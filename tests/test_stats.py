import pytest
from scipy.stats import ttest_rel

from starquad.stats import CONTRADICTED, HELD, NOT_RESOLVED, paired_claim, verdict_table

A = [80.0, 81.5, 79.0, 80.2]


def test_interval_equals_scipy_paired_t():
    b = [78.1, 80.9, 78.2, 79.0]
    c = paired_claim("star beats sum", A, b)
    ref = ttest_rel(A, b).confidence_interval(0.95)
    assert c["ci"] == pytest.approx([ref.low, ref.high], rel=1e-12)
    assert c["mean_diff"] == pytest.approx(sum(A) / 4 - sum(b) / 4)
    assert c["n"] == 4 and c["method"].startswith("paired t")


@pytest.mark.parametrize(
    "b, expect, verdict",
    [
        ([78.0, 79.4, 77.1, 78.3], "greater", HELD),  # a ahead by ≈2 every seed
        ([78.0, 79.4, 77.1, 78.3], "less", CONTRADICTED),  # the same data, the paper says the opposite
        ([82.0, 83.4, 81.1, 82.3], "greater", CONTRADICTED),
        ([79.0, 82.5, 78.0, 81.2], "greater", NOT_RESOLVED),  # differences +1, −1, +1, −1
        ([80.1, 81.3, 79.2, 80.1], "similar", HELD),  # within ±0.2 of each other
        ([75.0, 76.6, 74.1, 75.1], "similar", CONTRADICTED),  # ≈5 apart, margin 1
        ([79.0, 82.5, 78.0, 81.2], "similar", NOT_RESOLVED),  # interval wider than the margin
    ],
)
def test_all_three_verdicts(b, expect, verdict):
    assert paired_claim("claim", A, b, expect)["verdict"] == verdict


def test_one_seed_is_never_a_verdict():
    c = paired_claim("claim", [90.0], [10.0])
    assert c["ci"] is None and c["verdict"] == NOT_RESOLVED


def test_equal_differences_give_a_point_interval():
    c = paired_claim("claim", [2.0, 3.0], [1.0, 2.0])
    assert c["ci"] == [1.0, 1.0] and c["verdict"] == HELD


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same number of seeds"):
        paired_claim("claim", [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="expect must be one of"):
        paired_claim("claim", [1.0], [1.0], "bigger")


def test_table_lists_every_claim():
    claims = [
        dict(paired_claim("x beats y", A, A[::-1]), section="s1"),
        dict(paired_claim("z", [1.0], [0.0]), section="s2"),
    ]
    table = verdict_table(claims)
    assert table.count("\n") == 3 and "| s1 | x beats y |" in table and "– (one seed)" in table
