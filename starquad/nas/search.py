"""Hardware-aware search: train a supernet, then derive the most likely architecture that meets a latency
budget *when measured*.

1. **Weights warm-up** (``warmup_epochs``): one path per layer, every candidate trained evenly
   (:class:`~starquad.nas.supernet.EvenSampler`); no architecture steps.
2. **Search** (the remaining epochs): per batch a weight step on a path sampled from ``p = softmax(α)``, and an
   architecture step on a batch of the held-out part of the training split (never the test split):
   ``CE · max(1, E[T] / budget)^β`` with ``E[T]`` the latency table's prediction under ``p``. Weights: AdamW
   (timm), α: Adam with β1 = 0 (ProxylessNAS). Every epoch is a checkpoint (safetensors + a weights-only state),
   written atomically; ``resume=True`` continues an interrupted run exactly (per-epoch seeds, as the training
   runner's).
3. **Derivation**: the multiple-choice knapsack (:func:`~starquad.nas.supernet.knapsack`) at
   ``cap = budget / (1 + e95)``, e95 the predictor's 95th-percentile error; the derived network is *measured*;
   over the budget → the cap shrinks by the overshoot and it is derived again; under ``low · budget`` → the cap
   grows. The measured result, not the prediction, decides.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from starquad.errors import ConfigError
from starquad.extras import install_hint, installed, require
from starquad.io import atomic_write
from starquad.nas.config import SearchConfig

__all__ = ["Measure", "SearchConfig", "derive_within_budget", "retrain", "search"]

# times one architecture: (space, arch, protocol) -> median ms
Measure = Callable[[Any, list[int], Any], float]

_LOG = logging.getLogger(__name__)


# --- data ------------------------------------------------------------------------------------------------


def _tensors(cfg: SearchConfig, split: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A class-stratified subset of a split as normalised float tensors in memory (the search reads every image
    many times; decoding PIL images per step would dominate)."""
    from starquad.data import build_dataset, dataset_spec
    from starquad.data.datasets import ArrayImageDataset

    spec = dataset_spec(cfg.data)
    ds = build_dataset(cfg.data, split, cfg.data_dir, subset=n, seed=seed)
    if not isinstance(ds, ArrayImageDataset):
        raise ConfigError(f"the search holds its data in memory: '{cfg.data}' is not an in-memory image dataset; "
                          "use fashion-mnist or digits")  # fmt: skip
    x = torch.from_numpy(ds.images).float().div_(255)
    x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
    if x.shape[-1] != cfg.img_size:
        x = F.interpolate(x, size=(cfg.img_size, cfg.img_size), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(spec.mean or [0.5] * x.shape[1]).view(1, -1, 1, 1)
    std = torch.tensor(spec.std or [0.5] * x.shape[1]).view(1, -1, 1, 1)
    return (x - mean) / std, torch.from_numpy(ds.labels), len(ds.classes)


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    k = max(1, round(n * fraction))
    return np.sort(perm[k:]), np.sort(perm[:k])


def _batches(x: torch.Tensor, y: torch.Tensor, batch: int, generator: torch.Generator):
    order = torch.randperm(len(x), generator=generator)
    for i in range(0, len(x) - batch + 1 if len(x) >= batch else 1, batch):
        idx = order[i : i + batch]
        yield x[idx], y[idx]


# --- latency -----------------------------------------------------------------------------------------------


def load_or_build_table(cfg: SearchConfig, log: Callable[[str], None]):
    """The latency table of ``cfg`` (its file, or this machine's cache; a quick one is built when missing)."""
    from starquad.nas.latency import LatencyTable, Protocol, build_table, default_table_path
    from starquad.nas.space import get_space

    protocol = Protocol(runtime=cfg.runtime, threads=cfg.threads, img_size=cfg.img_size)
    path = Path(cfg.table) if cfg.table else default_table_path(cfg.space, protocol)
    if path.is_file() or cfg.table:
        table = LatencyTable.load(path)
        if table.space["name"] != cfg.space:
            raise ConfigError(f"{path} is a table of space '{table.space['name']}', the search is over '{cfg.space}'")
        return table, path
    log(f"no latency table for {cfg.space} at {path}: building a quick one ('starquad nas latency build --space "
        f"{cfg.space}' makes the full one)")  # fmt: skip
    protocol = dataclasses.replace(protocol, rounds=3, retries=0)
    table = build_table(get_space(cfg.space), protocol, fit_archs=20, log=log)
    table.save(path)
    return table, path


def derive_within_budget(table, space, probs: np.ndarray, budget_ms: float, measure: Callable[[list[int]], float],
                         low: float = 0.9, tries: int = 6,
                         log: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """The most likely architecture (``Σ log p``) whose *measured* latency is within ``[low · budget, budget]``.

    The first try aims the prediction into ``[low · budget, budget / (1 + e95)]``; every later one corrects the
    prediction by the last measured/predicted ratio ``k`` and aims into the middle half of the band,
    ``[(low + δ), (1 − δ)] · budget / k`` with ``δ = (1 − low) / 4``; when no architecture falls in a window,
    only its upper end binds. Returns the first architecture measured in the band, else the best one measured
    within the budget, else the fastest — with every try recorded. Deterministic for the same inputs."""
    from starquad.nas.supernet import knapsack

    log = log or _LOG.info
    const, costs = table.layer_costs(space)
    costs = np.array(costs)
    scores = np.log(np.clip(probs, 1e-12, None))
    e95 = float(table.fit.get("error95", 0.05))
    delta = (1 - low) / 4
    window = (low * budget_ms, budget_ms / (1 + e95))
    history, measured = [], {}
    for attempt in range(tries):
        lo, cap = window
        arch = knapsack(scores, costs, const, cap, floor=lo if lo < cap else None)
        if arch is None:
            arch = knapsack(scores, costs, const, cap)
        if arch is None:
            raise ConfigError(f"no architecture of '{space.name}' is predicted under {cap:.4g} ms (the fixed parts "
                              f"alone take {const:.4g} ms): raise --budget-ms")  # fmt: skip
        key = tuple(arch)
        if key not in measured:
            measured[key] = measure(arch)
        meas, pred = measured[key], table.predict_ms(space, arch)
        log_p = float(sum(scores[i, a] for i, a in enumerate(arch)))
        history.append({"try": attempt, "window_ms": [lo, cap], "arch": arch, "predicted_ms": pred,
                        "measured_ms": meas, "log_p": log_p})  # fmt: skip
        log(f"try {attempt}: aiming at {lo:.4f}–{cap:.4f} ms predicted → predicted {pred:.4f}, measured {meas:.4f} ms "
            f"(budget {budget_ms:.4f})")  # fmt: skip
        if low * budget_ms <= meas <= budget_ms:
            break
        k = meas / pred
        window = ((low + delta) * budget_ms / k, (1 - delta) * budget_ms / k)
    inside = [h for h in history if low * budget_ms <= h["measured_ms"] <= budget_ms]
    under = [h for h in history if h["measured_ms"] <= budget_ms]
    if inside:
        chosen = inside[0]
    elif under:
        chosen = max(under, key=lambda h: h["measured_ms"])
    else:
        chosen = min(history, key=lambda h: h["measured_ms"])
    return {**chosen, "budget_met": chosen["measured_ms"] <= budget_ms,
            "in_band": low * budget_ms <= chosen["measured_ms"] <= budget_ms, "history": history, "error95": e95}


# --- the search ------------------------------------------------------------------------------------------


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1009 + 17)


def _plot_alpha(probs: np.ndarray, names: list[str], path: Path) -> None:
    matplotlib = require("matplotlib", "plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(names), 1 + 0.35 * len(probs)), constrained_layout=True)
    im = ax.imshow(probs, vmin=0, vmax=1, cmap="viridis")
    ax.set(xticks=range(len(names)), yticks=range(len(probs)), ylabel="layer", title="p = softmax(α)")
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())


def search(cfg: SearchConfig, log: Callable[[str], None] | None = None, measure: Measure | None = None
           ) -> dict[str, Any]:  # fmt: skip
    """Run (or with ``cfg.resume`` continue) a search; writes the run directory and returns ``result.json``.

    ``measure(space, arch, protocol) -> ms`` times a derived network (default:
    :func:`~starquad.nas.latency.measure_arch` here; under Ray, the latency probe's)."""
    from starquad.nas.latency import measure_arch
    from starquad.runtime import torch_threads

    cfg.validate()
    log = log or _LOG.info
    with torch_threads(cfg.train_threads or torch.get_num_threads()):
        return _search(cfg, log, measure or measure_arch)


def _search(cfg: SearchConfig, log: Callable[[str], None], measure: Measure) -> dict[str, Any]:
    from timm.optim import create_optimizer_v2

    from starquad.models.checkpoint import load_state_checked
    from starquad.nas.space import get_space, save_arch
    from starquad.nas.supernet import EvenSampler, Supernet, expected_latency, latency_penalty
    from starquad.train.engine import NonFiniteLossError
    from starquad.train.state import load_run_state, save_run_state

    t0 = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.resume:
        saved = json.loads((out / "args.json").read_text()) if (out / "args.json").is_file() else None
        if saved is None:
            raise ConfigError(f"--resume {out}: no args.json (not a search run directory?)")
        changed = {k for k in ("space", "budget_ms", "seed", "subset", "img_size", "data") if saved.get(k) !=
                   getattr(cfg, k)}  # fmt: skip
        if changed:
            raise ConfigError(f"--resume {out}: the run was made with other {', '.join(sorted(changed))}; resume with "
                              "the same options or use a new --out")  # fmt: skip
    elif (out / "last.state.pt").exists():
        raise ConfigError(f"{out} already holds a search; pass --resume to continue it or choose another --out")
    atomic_write(out / "args.json", json.dumps(asdict(cfg), indent=1) + "\n")
    space = get_space(cfg.space)
    table, table_path = load_or_build_table(cfg, log)
    if table.protocol.img_size != cfg.img_size:
        raise ConfigError(f"{table_path} was measured at {table.protocol.img_size}², the search runs at "
                          f"{cfg.img_size}²")  # fmt: skip
    const, costs = table.layer_costs(space)
    costs_t = torch.tensor(costs)
    x, y, num_classes = _tensors(cfg, "train", cfg.subset, cfg.seed)
    w_idx, a_idx = _split(len(x), cfg.arch_fraction, cfg.seed)
    xw, yw, xa, ya = x[w_idx], y[w_idx], x[a_idx], y[a_idx]
    xt, yt, _ = _tensors(cfg, "test", cfg.eval_subset, cfg.seed)
    torch.manual_seed(cfg.seed)
    net = Supernet(space, num_classes, x.shape[1])
    w_opt = create_optimizer_v2(net.net, opt="adamw", lr=cfg.lr, weight_decay=cfg.weight_decay)
    a_opt = torch.optim.Adam([net.alpha], lr=cfg.arch_lr, betas=(0.0, 0.999), eps=1e-8)
    steps = max(1, len(xw) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=cfg.epochs * steps)
    start, rows = 0, []
    if cfg.resume:
        weights, state = load_run_state(out)
        load_state_checked(net, weights, str(out / "last.safetensors"))
        w_opt.load_state_dict(state["w_opt"])
        a_opt.load_state_dict(state["a_opt"])
        sched.load_state_dict(state["sched"])
        start, rows = int(state["epoch"]) + 1, list(state["rows"])
        log(f"resuming {out} after epoch {start - 1}")
    names = [c.name for c in space.candidates]
    log(f"{space.name}: {space.num_layers} layers × {len(names)} candidates; {len(xw)} weight / {len(xa)} α images; "
        f"budget {cfg.budget_ms:.4f} ms ({table.protocol.runtime}, {table.protocol.threads} thread(s)); fixed parts "
        f"{const:.4f} ms, E[T] now {float(expected_latency(net.probs().detach(), const, costs_t)):.4f} ms")  # fmt: skip
    for epoch in range(start, cfg.epochs):
        gen = _epoch_generator(cfg.seed, epoch)
        even = EvenSampler(space.num_layers, len(names), gen)
        arch_batches = _batches(xa, ya, min(cfg.batch_size, len(xa)), gen)
        searching = epoch >= cfg.warmup_epochs
        net.train()
        w_loss = a_loss = 0.0
        te = time.perf_counter()
        for xb, yb in _batches(xw, yw, cfg.batch_size, gen):
            net.set_arch(even()) if not searching else net.sample_arch(gen)
            loss = F.cross_entropy(net(xb), yb)
            if not math.isfinite(loss.item()):
                raise NonFiniteLossError(f"weight loss is {loss.item()} at epoch {epoch}; lower --lr")
            w_opt.zero_grad(set_to_none=True)
            loss.backward()
            w_opt.step()
            sched.step()
            w_loss += loss.item() / steps
            if searching:
                try:
                    xab, yab = next(arch_batches)
                except StopIteration:
                    arch_batches = _batches(xa, ya, min(cfg.batch_size, len(xa)), gen)
                    xab, yab = next(arch_batches)
                net.sample_pairs(gen)
                ce = F.cross_entropy(net(xab), yab)
                expected = expected_latency(net.probs(), const, costs_t)
                loss_a = ce * latency_penalty(expected, cfg.budget_ms, cfg.beta) if cfg.latency_loss else ce
                if not math.isfinite(loss_a.item()):
                    raise NonFiniteLossError(f"architecture loss is {loss_a.item()} at epoch {epoch}; lower --arch-lr")
                (grad,) = torch.autograd.grad(loss_a, [net.alpha])  # α only: the weights' step is separate
                a_opt.zero_grad(set_to_none=True)
                net.alpha.grad = grad
                a_opt.step()
                a_loss += loss_a.item() / steps
        probs = net.probs().detach()
        row = {"epoch": epoch, "weight_loss": round(w_loss, 5), "arch_loss": round(a_loss, 5) if searching else "",
               "expected_ms": round(float(expected_latency(probs, const, costs_t)), 5),
               "seconds": round(time.perf_counter() - te, 2),
               **{f"p{layer}_{n}": round(float(probs[layer, i]), 5) for layer in range(space.num_layers)
                  for i, n in enumerate(names)}}  # fmt: skip
        rows.append(row)
        save_run_state(out, net.state_dict(), {"epoch": epoch, "w_opt": w_opt.state_dict(),
                                               "a_opt": a_opt.state_dict(), "sched": sched.state_dict(),
                                               "rows": rows})  # fmt: skip
        _write_rows(out / "alpha_history.csv", rows)
        log(f"epoch {epoch} ({'search' if searching else 'warm-up'}): weight loss {w_loss:.4f}"
            + (f", arch loss {a_loss:.4f}" if searching else "") + f", E[T] {row['expected_ms']:.4f} ms, "
            f"{row['seconds']:.1f} s")  # fmt: skip
    probs = net.probs().detach().numpy()
    if installed("matplotlib"):
        _plot_alpha(probs, names, out / "alpha.png")
    else:
        log(f"{install_hint('matplotlib', 'alpha.png')}; the search goes on without it")
    derived = derive_within_budget(table, space, probs, cfg.budget_ms,
                                   lambda a: measure(space, a, table.protocol),
                                   low=cfg.low, tries=cfg.tries, log=log)  # fmt: skip
    arch = derived["arch"]
    save_arch(out / "arch.json", space, arch)
    net.set_arch(arch)
    net.eval()
    with torch.no_grad():
        one_shot = float((net(xt).argmax(1) == yt).float().mean()) * 100
    result = {"space": space.name, "budget_ms": cfg.budget_ms, "predicted_ms": derived["predicted_ms"],
              "measured_ms": derived["measured_ms"], "budget_met": derived["budget_met"], "in_band": derived["in_band"],
              "low": cfg.low, "skips": sum(space.candidates[i].kind == "skip" for i in arch), "arch": arch,
              "ops": [space.candidates[i].name for i in arch], "runtime": table.protocol.runtime,
              "threads": table.protocol.threads, "input_size": [table.protocol.in_chans, cfg.img_size, cfg.img_size],
              "table": str(table_path), "error95": derived["error95"], "tries": derived["history"],
              "one_shot_top1": one_shot, "seed": cfg.seed, "seconds": time.perf_counter() - t0}  # fmt: skip
    atomic_write(out / "result.json", json.dumps(result, indent=1) + "\n")
    log(f"derived {result['ops']} ({result['skips']} skips): measured {result['measured_ms']:.4f} ms for a budget of "
        f"{cfg.budget_ms:.4f} ms ({'met' if result['budget_met'] else 'MISSED'}); supernet top-1 {one_shot:.1f}%; "
        f"{result['seconds']:.0f} s")  # fmt: skip
    return result


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, buffer.getvalue())



# --- retraining ------------------------------------------------------------------------------------------


def retrain(run_dir: str | Path, cfg, log: Callable[[str], None] | None = None, asked: set[str] | None = None,
            measure: Measure | None = None) -> dict[str, Any]:  # fmt: skip
    """Train a search's derived architecture from scratch with the training engine (``cfg``: a TrainConfig whose
    model is replaced by ``RUN/arch.json``; output ``RUN/retrain`` unless given), then time it again the way the
    search did. Writes and returns ``RUN/retrain/nas_result.json``: top-1, params, MACs, predicted and measured
    latency, the budget."""
    from starquad.bench.flops import count_flops
    from starquad.models import create_model
    from starquad.nas.latency import LatencyTable, measure_arch
    from starquad.nas.space import load_arch
    from starquad.train import train

    log = log or _LOG.info
    run_dir = Path(run_dir)
    result_path = run_dir / "result.json"
    if not result_path.is_file():
        raise ConfigError(f"{run_dir}: no result.json — not a finished search (starquad nas search --out DIR)")
    searched = json.loads(result_path.read_text())
    arch_file = run_dir / "arch.json"
    space, arch = load_arch(arch_file)
    default_output = type(cfg)().output  # 'runs/train': not asked for, so the retraining goes into the run
    output = str(run_dir / "retrain") if cfg.output in (None, "", default_output) else cfg.output
    cfg = dataclasses.replace(cfg, model=str(arch_file), output=output)  # a copy: the caller's cfg stays as it is
    trained = train(cfg, log, asked=asked)
    table = LatencyTable.load(searched["table"])
    measured = (measure or measure_arch)(space, arch, table.protocol)
    model = create_model(str(arch_file), num_classes=trained["num_classes"], in_chans=trained["in_chans"])
    flops = count_flops(model, tuple(searched["input_size"]))
    out = {"space": space.name, "arch": arch, "top1": trained["best_top1"], "epochs": trained["epochs"],
           "params": flops.params, "macs": flops.macs, "budget_ms": searched["budget_ms"],
           "predicted_ms": table.predict_ms(space, arch), "measured_ms": measured,
           "budget_met": measured <= searched["budget_ms"], "data": cfg.data}  # fmt: skip
    atomic_write(Path(cfg.output) / "nas_result.json", json.dumps(out, indent=1) + "\n")
    log(f"retrained {space.name} architecture: top-1 {out['top1']:.2f}%, {out['params'] / 1e6:.3f}M params, "
        f"{out['macs'] / 1e6:.1f}M MACs, measured {measured:.4f} ms (budget {out['budget_ms']:.4f} ms)")  # fmt: skip
    return out
