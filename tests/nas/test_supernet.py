"""The supernet, its expected latency and penalty, and the derivation under a budget."""

import itertools
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nas_helpers import SPACE, synthetic_table

from starquad.errors import ConfigError
from starquad.nas import build, get_space, random_arch
from starquad.nas.search import derive_within_budget
from starquad.nas.supernet import EvenSampler, Supernet, expected_latency, knapsack, latency_penalty

TINY = get_space("quadranet", layers=(1, 1, 1, 1))


def test_expected_latency_at_a_one_hot_p_is_the_table_prediction():
    table = synthetic_table()
    table.overhead_ms, table.scale, table.per_op_ms = 0.3, 0.9, -0.05
    const, costs = table.layer_costs(SPACE)
    for arch in [random_arch(SPACE, random.Random(s)) for s in range(5)]:
        one_hot = F.one_hot(torch.tensor(arch), len(SPACE.candidates)).double()
        got = expected_latency(one_hot, const, torch.tensor(costs, dtype=torch.float64))
        assert float(got) == pytest.approx(table.predict_ms(SPACE, arch), rel=1e-12)


def test_expected_latency_gradient_equals_finite_differences():
    table = synthetic_table()
    const, costs = table.layer_costs(SPACE)
    costs = torch.tensor(costs, dtype=torch.float64)
    alpha = torch.randn(SPACE.num_layers, len(SPACE.candidates), dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(expected_latency(alpha.softmax(-1), const, costs), alpha)
    eps = 1e-6
    for i, j in [(0, 0), (1, 3), (4, 6), (2, 5)]:
        plus, minus = alpha.detach().clone(), alpha.detach().clone()
        plus[i, j] += eps
        minus[i, j] -= eps
        fd = (expected_latency(plus.softmax(-1), const, costs) - expected_latency(minus.softmax(-1), const, costs))
        assert float(grad[i, j]) == pytest.approx(float(fd) / (2 * eps), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("budget", [1e-3, 1e-1, 1.0, 1e2, 1e4])  # 1 µs … 10 s, in ms
def test_the_penalty_is_finite_for_any_budget_and_depends_on_the_ratio_only(budget):
    for ratio in [1e-6, 0.5, 1.0, 1.5, 40.0]:
        expected = torch.tensor(ratio * budget, requires_grad=True)
        penalty = latency_penalty(expected, budget, beta=2.0)
        (grad,) = torch.autograd.grad(penalty, expected)
        penalty = penalty.detach()
        assert math.isfinite(float(penalty)) and math.isfinite(float(grad))
        assert float(penalty) == pytest.approx(max(1.0, ratio) ** 2, rel=1e-5)
        assert (float(grad) > 0) == (ratio > 1)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="budget must be a positive finite number"):
            latency_penalty(torch.tensor(1.0), bad, beta=2.0)


def _alpha_trajectory(unit: float, steps: int = 4) -> torch.Tensor:
    """α after a few architecture steps of a tiny supernet, every latency and the budget in ``unit`` × ms."""
    torch.manual_seed(0)
    net = Supernet(TINY, num_classes=3, in_chans=1)
    table = synthetic_table(TINY)
    const, costs = table.layer_costs(TINY)
    budget = 0.6 * (const + sum(max(c) for c in costs)) * unit  # binds: E[T] starts over it
    costs = torch.tensor(costs, dtype=torch.float64) * unit
    opt = torch.optim.Adam([net.alpha], lr=0.05, betas=(0.0, 0.999))
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 1, 28, 28, generator=gen), torch.randint(0, 3, (8,), generator=gen)
    for _ in range(steps):
        net.sample_pairs(gen)
        loss = F.cross_entropy(net(x), y) * latency_penalty(expected_latency(net.probs(), const * unit, costs),
                                                            budget, beta=2.0)  # fmt: skip
        (grad,) = torch.autograd.grad(loss, [net.alpha])
        net.alpha.grad = grad
        opt.step()
    return net.alpha.detach().clone()


def test_changing_the_latency_unit_leaves_the_alpha_trajectory_unchanged():
    ms, us = _alpha_trajectory(1.0), _alpha_trajectory(1000.0)
    assert not torch.equal(ms, torch.zeros_like(ms))  # the steps moved α
    torch.testing.assert_close(ms, us, rtol=1e-5, atol=1e-6)


def test_an_architecture_step_runs_one_path_and_moves_only_the_two_sampled_alphas():
    torch.manual_seed(0)
    net = Supernet(TINY, num_classes=3, in_chans=1).eval()
    x = torch.randn(2, 1, 28, 28)
    gen = torch.Generator().manual_seed(3)
    net.sample_pairs(gen)
    pairs = [layer.pair for layer in net.layers]
    picked = [layer.pair[int(layer.gates[1].detach() > 0.5)] for layer in net.layers]
    out = net(x)
    (grad,) = torch.autograd.grad(out.square().sum(), [net.alpha])
    net.set_arch(picked)
    torch.testing.assert_close(out, net(x), rtol=0, atol=1e-6)  # the gates' value is one-hot
    for i, pair in enumerate(pairs):
        others = [j for j in range(len(TINY.candidates)) if j not in pair]
        assert torch.all(grad[i, others] == 0) and grad[i, list(pair)].abs().sum() > 0


def test_the_supernet_path_is_the_standalone_model_with_the_same_weights():
    torch.manual_seed(0)
    net = Supernet(TINY, num_classes=10, in_chans=1).eval()
    arch = [1, 4, 6, 5]
    net.set_arch(arch)
    model = build(TINY, arch, num_classes=10, in_chans=1).eval()
    model.load_state_dict(net.subnet_state_dict(arch))  # strict: every key maps
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=0, atol=0)


def test_the_warm_up_trains_every_candidate_evenly():
    sampler = EvenSampler(layers=5, choices=7, generator=torch.Generator().manual_seed(0))
    draws = np.array([sampler() for _ in range(21)])  # three cycles
    for layer in range(5):
        assert np.bincount(draws[:, layer], minlength=7).tolist() == [3] * 7
    assert len({tuple(draws[:, 0][k * 7 : (k + 1) * 7]) for k in range(3)}) > 1  # fresh order per cycle


def _sum(table: np.ndarray, arch) -> float:
    return float(sum(table[layer, k] for layer, k in enumerate(arch)))


def test_knapsack_is_exact_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(30):
        layers, choices = 4, 3
        scores = np.log(rng.dirichlet(np.ones(choices), size=layers))
        costs = rng.uniform(0.0, 1.0, size=(layers, choices))
        const, cap = 0.2, 0.2 + rng.uniform(0.5, 3.0)
        bins = 4000
        arch = knapsack(scores, costs, const, cap, bins=bins)
        combos = list(itertools.product(range(choices), repeat=layers))
        if not any(const + _sum(costs, c) <= cap for c in combos):
            assert arch is None
            continue
        assert const + _sum(costs, arch) <= cap + 1e-12  # within the cap exactly, not just in bins
        slack = layers * (cap - const) / bins  # what rounding the costs up to bins may give away
        best = max(_sum(scores, c) for c in combos if const + _sum(costs, c) <= cap - slack)
        assert _sum(scores, arch) >= best - 1e-12
        assert knapsack(scores, costs, const, cap, bins=bins) == arch  # deterministic
        floor = const + 0.8 * (cap - const)  # a band: only totals in [floor, cap]
        banded = knapsack(scores, costs, const, cap, floor=floor, bins=bins)
        in_band = [c for c in combos if floor <= const + _sum(costs, c) <= cap - slack]
        if banded is None:
            assert not in_band
            continue
        assert floor - slack <= const + _sum(costs, banded) <= cap + 1e-12
        if in_band:
            assert _sum(scores, banded) >= max(_sum(scores, c) for c in in_band) - 1e-12
    assert knapsack(np.zeros((2, 2)), np.ones((2, 2)), const=1.0, cap=0.5) is None


def test_derivation_measures_and_tightens_until_the_budget_holds():
    """A 'machine' 15% slower than the table: the first derivation is over the budget when measured, a later
    one inside [0.9, 1] × budget; the prediction alone would have missed."""
    table = synthetic_table()
    rng = random.Random(0)
    for entry in table.entries.values():  # fine-grained costs, so totals near any cap exist
        entry["ms"] = entry["ms"] and rng.uniform(0.5, 3.0)
    table.fit["error95"] = 0.02
    probs = np.full((SPACE.num_layers, len(SPACE.candidates)), 1 / len(SPACE.candidates))
    probs[:, 5] += 0.3  # prefer a large op everywhere
    probs /= probs.sum(1, keepdims=True)
    measured = []

    def measure(arch):
        measured.append(arch)
        return 1.15 * table.predict_ms(SPACE, arch)

    budget = 0.7 * table.predict_ms(SPACE, [5] * SPACE.num_layers)
    result = derive_within_budget(table, SPACE, probs, budget, measure, low=0.9, tries=6, log=lambda m: None)
    assert result["history"][0]["measured_ms"] > budget and result["in_band"] and result["budget_met"]
    assert 0.9 * budget <= result["measured_ms"] <= budget and len(measured) == len(result["history"]) >= 2
    again = derive_within_budget(table, SPACE, probs, budget, measure, low=0.9, tries=6, log=lambda m: None)
    assert again["arch"] == result["arch"]  # same inputs, same architecture
    with pytest.raises(ConfigError, match="the fixed parts alone take"):
        derive_within_budget(table, SPACE, probs, 1e-3, measure, log=lambda m: None)
