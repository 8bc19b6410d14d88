"""The supernet of a search space (ProxylessNAS's binarised paths), its expected latency, and the derivation
of one architecture under a latency budget.

* :class:`MixedOp` holds every candidate of one searchable layer. A weight step runs one path per layer
  (memory of one network); an architecture step runs two paths sampled from ``p = softmax(α)`` with gates
  whose value is one-hot (the output is exactly one path's) and whose gradient is that of the two paths'
  renormalised probabilities — ProxylessNAS's estimator ``∂L/∂α_i = Σ_j ∂L/∂g_j · p_j (δ_ij − p_i)``.
* :func:`expected_latency` is ``E[T] = const + Σ_layers Σ_i p_i · cost_i`` from the latency table's
  :meth:`~starquad.nas.latency.LatencyTable.layer_costs` — the predictor itself, linear in ``p``, so
  differentiable in α.
* :func:`latency_penalty` depends on ``r = E[T] / budget`` only: ``max(1, r)^β``, a factor on the
  cross-entropy. No logarithm of a latency (ProxylessNAS's ``(log E[T] / log ref)^β`` is NaN or inverted
  below one unit), no unit: scaling every latency and the budget together changes nothing.
* :func:`knapsack` picks one op per layer maximising ``Σ log p`` subject to ``predicted ≤ cap``: an exact
  multiple-choice knapsack, a dynamic programme over layers and latency bins (costs rounded *up* to the bin,
  so what it returns is within the cap in exact arithmetic too). Ties go to the lower index: deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from starquad.errors import ConfigError
from starquad.nas.space import Candidate, SearchSpace, skeleton

__all__ = ["MixedOp", "Supernet", "expected_latency", "knapsack", "latency_penalty"]


class MixedOp(nn.Module):
    """All candidates of one searchable layer; runs one of them, or two behind gates (architecture steps)."""

    def __init__(self, candidates: Sequence[Candidate], dim: int, drop_path: float = 0.0):
        super().__init__()
        self.candidates = nn.ModuleList(c.build(dim, drop_path) for c in candidates)
        self.active = 0
        self.pair: tuple[int, int] | None = None
        self.gates: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gates is None:
            return self.candidates[self.active](x)
        a, b = self.pair
        return self.gates[0] * self.candidates[a](x) + self.gates[1] * self.candidates[b](x)


class Supernet(nn.Module):
    """Every architecture of ``space`` in one network, with architecture parameters ``alpha`` (layers × candidates).

    ``weight_parameters()`` are the ops' weights (one optimiser), ``alpha`` the architecture (another). Call one
    of the ``sample_*`` / ``set_arch`` methods before a forward to choose the paths it runs.
    """

    def __init__(self, space: SearchSpace, num_classes: int, in_chans: int, drop_path_rate: float = 0.0):
        super().__init__()
        self.space = space
        self.net = skeleton(space, lambda layer, dim, dp: MixedOp(space.candidates, dim, dp), f"supernet_{space.name}",
                            num_classes=num_classes, in_chans=in_chans, drop_path_rate=drop_path_rate)  # fmt: skip
        named = [(n, m) for n, m in self.net.named_modules() if isinstance(m, MixedOp)]  # stage order, as archs
        self.layer_names = [n for n, _ in named]
        self.layers = [m for _, m in named]
        self.alpha = nn.Parameter(torch.zeros(space.num_layers, len(space.candidates)))

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.net.parameters())

    def probs(self) -> torch.Tensor:
        return self.alpha.softmax(-1)

    def set_arch(self, arch: Sequence[int]) -> None:
        """Run the single paths of ``arch`` (no gates)."""
        for layer, choice in zip(self.layers, self.space.check(arch), strict=True):
            layer.active, layer.pair, layer.gates = choice, None, None

    def sample_arch(self, generator: torch.Generator) -> list[int]:
        """One path per layer drawn from ``p`` (a weight step after the warm-up)."""
        arch = torch.multinomial(self.probs().detach(), 1, generator=generator).squeeze(1).tolist()
        self.set_arch(arch)
        return arch

    def sample_pairs(self, generator: torch.Generator) -> None:
        """Two distinct paths per layer drawn from ``p``, one of them active, gates carrying α's gradient
        (an architecture step)."""
        probs = self.probs()
        pairs = torch.multinomial(probs.detach(), 2, replacement=False, generator=generator)
        for i, layer in enumerate(self.layers):
            two = self.alpha[i, pairs[i]].softmax(-1)
            pick = int(torch.multinomial(two.detach(), 1, generator=generator))
            hard = torch.zeros(2).index_fill_(0, torch.tensor(pick), 1.0)
            layer.pair, layer.gates = (int(pairs[i, 0]), int(pairs[i, 1])), hard - two.detach() + two

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def subnet_state_dict(self, arch: Sequence[int]) -> dict[str, torch.Tensor]:
        """The weights of ``arch`` as its standalone model (:func:`~starquad.nas.space.build`) names them."""
        arch = self.space.check(arch)
        prefixes = {f"{name}.candidates.": layer for layer, name in enumerate(self.layer_names)}
        out = {}
        for key, value in self.net.state_dict().items():
            head, sep, rest = key.partition(".candidates.")
            if not sep:
                out[key] = value
                continue
            index, _, tail = rest.partition(".")
            if int(index) == arch[prefixes[head + sep]]:
                out[f"{head}.{tail}"] = value
        return out


class EvenSampler:
    """Weight warm-up paths that train every candidate evenly: each layer runs through a fresh random
    permutation of its candidates, so over every ``len(candidates)`` steps each is trained exactly once."""

    def __init__(self, layers: int, choices: int, generator: torch.Generator):
        self.layers, self.choices, self.generator, self.step = layers, choices, generator, 0
        self._perms = torch.empty(0)

    def __call__(self) -> list[int]:
        k = self.step % self.choices
        if k == 0:
            self._perms = torch.stack([torch.randperm(self.choices, generator=self.generator)
                                       for _ in range(self.layers)])  # fmt: skip
        self.step += 1
        return self._perms[:, k].tolist()

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "perms": self._perms.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self._perms = int(state["step"]), state["perms"].clone()


def expected_latency(probs: torch.Tensor, const: float, costs: torch.Tensor) -> torch.Tensor:
    """``E[T] = const + Σ_layers Σ_i p_i · cost_i`` (differentiable in ``probs``)."""
    return const + (probs * costs).sum()


def latency_penalty(expected: torch.Tensor, budget: float, beta: float) -> torch.Tensor:
    """``max(1, E[T] / budget)^β``: 1 within the budget, growing with the overshoot; unit-free."""
    if not (budget > 0 and math.isfinite(budget)):
        raise ConfigError(f"the latency budget must be a positive finite number, got {budget!r}")
    return torch.clamp(expected / budget, min=1.0) ** beta


def knapsack(scores: np.ndarray, costs: np.ndarray, const: float, cap: float, floor: float | None = None,
             bins: int = 4000) -> list[int] | None:  # fmt: skip
    """One choice per layer maximising ``Σ scores[l, choice]`` subject to ``const + Σ costs[l, choice] ≤ cap``
    (and, with ``floor``, ``≥ floor``: aiming into a band rather than only under a cap).

    Exact for costs rounded up to ``(cap − const) / bins``; returns None when nothing fits. A score of -inf
    forbids a choice."""
    scores, costs = np.asarray(scores, dtype=float), np.asarray(costs, dtype=float)
    room = cap - const
    if room < 0:
        return None
    width = room / bins if room > 0 else 1.0
    cost_bins = np.maximum(np.ceil(costs / width - 1e-9), 0).astype(int)  # up: a fit here is a fit exactly
    layers, choices = scores.shape
    best = np.full(bins + 1, -np.inf)  # best[b]: the best score of the layers so far using exactly b bins
    best[0] = 0.0
    picks = np.zeros((layers, bins + 1), dtype=int)
    for layer in range(layers):
        new = np.full(bins + 1, -np.inf)
        for choice in range(choices):  # ascending: on a tie, the lower index stays
            c, s = cost_bins[layer, choice], scores[layer, choice]
            if c > bins or s == -np.inf:
                continue
            cand = np.full(bins + 1, -np.inf)
            cand[c:] = best[: bins + 1 - c] + s
            better = cand > new
            new[better], picks[layer, better] = cand[better], choice
        best = new
    if floor is not None:  # totals below the floor are out (a binned total overstates the exact one ≤ layers bins)
        best[: max(0, min(bins + 1, int(np.ceil((floor - const) / width))))] = -np.inf
    if not np.isfinite(best).any():
        return None
    b = int(np.argmax(best))  # the lowest bin among the best scores
    arch = []
    for layer in reversed(range(layers)):
        choice = int(picks[layer, b])
        arch.append(choice)
        b -= cost_bins[layer, choice]
    return arch[::-1]
