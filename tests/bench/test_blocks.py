import pytest

from starquad.bench.blocks import BlockStudyConfig, format_block_study, run_block_study
from starquad.errors import ConfigError

C, N, S, DEPTH = 32, 1, 14, 2


@pytest.fixture(scope="module")
def rows():
    cfg = BlockStudyConfig(channels=(C,), batch=N, size=S, depth=DEPTH, rounds=1, measure_rss=False,
                           shared=("lean", "plain"))  # fmt: skip
    return {(r["key"], r["shared"]): r for r in run_block_study(cfg, log=lambda m: None)}


def _per_block_floats(row):
    return row["saved_mib_per_block"] * 2**20 / 4 / (N * S * S)  # floats saved per pixel per block


def test_saved_activations_follow_the_design(rows):
    # Per pixel, in floats: LN1 keeps x (+ mean, rstd), the mixer its input, layer scale the mixer output;
    # the lean MLP keeps x and h (4C) (+ mean, rstd). Plain autograd adds LN(x), GELU(h) (4C) and fc2(·).
    assert _per_block_floats(rows["skip", "lean"]) == pytest.approx(5 * C + 2)
    assert _per_block_floats(rows["skip", "plain"]) == pytest.approx(11 * C + 2)
    assert _per_block_floats(rows["conv", "lean"]) == pytest.approx(8 * C + 4)
    assert _per_block_floats(rows["quadra_me", "lean"]) == pytest.approx(8 * C + 4)  # as a plain dwconv
    assert _per_block_floats(rows["quadra", "lean"]) == pytest.approx(10 * C + 4)  # + x_a, x_b
    hor = rows["hor", "lean"]
    assert hor["memory_vs_hor"] == 1.0
    assert rows["quadra_me", "lean"]["memory_vs_hor"] <= 0.6


def test_table_has_every_row_and_the_ratios(rows):
    cfg = BlockStudyConfig(channels=(C,), batch=N, size=S, depth=DEPTH, rounds=1)
    table = format_block_study(list(rows.values()), cfg)
    assert "QuadraBlock, memory-efficient" in table and "fwd_speedup_vs_hor" in table
    assert table.count("\n| ") == len(rows) + 1  # header + one line per row


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(blocks=("quadra", "mlp")), "blocks must be one of skip, conv"), (dict(channels=(48,)), "multiples of 32"),
     (dict(batch=0), "batch must be >= 1"), (dict(shared=("fast",)), "shared must be one of lean, plain")],
)  # fmt: skip
def test_bad_configuration_is_explained(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        run_block_study(BlockStudyConfig(**kwargs))
