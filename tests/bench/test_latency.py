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
