import time

import pytest
import torch

from starquad.bench import time_call, time_forward


def test_timer_measures_a_known_delay():
    stats = time_call(lambda: time.sleep(0.002), warmup=1, runs=9)
    assert 2.0 <= stats.p10_ms <= stats.median_ms <= stats.p90_ms
    assert stats.runs == 9 and stats.mean_ms >= 2.0


def test_time_forward_is_finite_and_positive():
    stats = time_forward(torch.nn.Linear(8, 8), torch.randn(1, 8), warmup=2, runs=5)
    assert 0 < stats.median_ms < 1e3


def test_bad_run_counts():
    with pytest.raises(ValueError, match="runs >= 1"):
        time_call(lambda: None, runs=0)


def test_time_pairs_times_each_side_in_a_block_and_pairs_each_visit():
    from starquad.bench.latency import time_pairs

    calls: list[str] = []
    pairs = [(lambda: calls.append("a0"), lambda: calls.append("b0")),
             (lambda: (calls.append("a1"), time.sleep(0.002)), lambda: calls.append("b1"))]  # fmt: skip
    out = time_pairs(pairs, rounds=4, warmup=1, runs=3, seed=0)
    assert len(calls) == 4 * 2 * 2 * (1 + 3)  # rounds × pairs × sides × (warm-up + timed)
    visits = [calls[i:i + 8] for i in range(0, len(calls), 8)]
    for visit in visits:  # one pair per visit: one side's block of 4 calls, then the other's
        assert len({c[1] for c in visit}) == 1
        assert len(set(visit[:4])) == len(set(visit[4:])) == 1 and visit[0] != visit[4]
    assert {v[0][0] for v in visits} == {"a", "b"}  # either side may go first
    assert all(len(o["a_round_ms"]) == len(o["b_round_ms"]) == 4 for o in out)
    assert out[1]["a_ms"] >= 2.0 > out[1]["b_ms"]
    with pytest.raises(ValueError, match="rounds >= 2"):
        time_pairs(pairs, rounds=1)


def test_time_ratios_times_blocks_and_gives_each_pairs_ratio():
    from starquad.bench.latency import time_ratios

    calls: list[str] = []
    pairs = [(lambda: (calls.append("a"), time.sleep(0.004)), lambda: (calls.append("b"), time.sleep(0.001)))]
    out = time_ratios(pairs, rounds=3, warmup=1, runs=4)
    assert len(calls) == 3 * 2 * (1 + 4)
    blocks = [calls[i:i + 5] for i in range(0, len(calls), 5)]
    assert all(len(set(block)) == 1 for block in blocks)  # one runner per block, not alternating call by call
    assert out[0]["a_ms"] >= 4.0 > out[0]["b_ms"] >= 1.0
    assert 0.1 < out[0]["ratio"] < 0.5  # ≈ 1/4 (sleep overshoots a little on a busy host)
