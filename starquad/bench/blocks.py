"""Block study (QuadraNet, Table II): a stack of blocks of each type — memory, forward and training time.

Every block type is :class:`starquad.models.blocks.MixerBlock` with the same norms, MLP half and layer
scales, so the figures differ by the spatial mixer only. For each (block type, channels) it reports:

* saved activations (:func:`starquad.bench.memory.saved_activations`): exact bytes per block;
* peak RSS rise of one training step (whole process; includes gradients and transient buffers);
* forward ms (``no_grad``) and training-step ms (forward + backward), medians over rounds that
  interleave the block types, so machine-load drift hits them alike;
* ratios to HorBlock (order 3) at the same channels: memory ratio (lower is better) and speed-ups
  (``HorBlock ms / ms``, higher is better).

``shared='plain'`` runs the shared parts with plain autograd instead of the lean MLP backward, to show
what the lean parts save and cost.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn

from starquad.bench.config import BLOCK_VARIANTS, BlockStudyConfig
from starquad.bench.memory import MiB, peak_rss, saved_activations_of
from starquad.bench.table import markdown_table
from starquad.models.blocks import MixerBlock
from starquad.runtime import progress, torch_threads

__all__ = [
    "BLOCK_VARIANTS",
    "BlockStudyConfig",
    "format_block_study",
    "run_block_study",
]

_LOG = logging.getLogger(__name__)

REFERENCE = "hor"


def _build_stack(key: str, dim: int, depth: int, lean: bool, channels_last: bool, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    stack = nn.Sequential(*(MixerBlock(dim, lean=lean, **BLOCK_VARIANTS[key][1]) for _ in range(depth))).train()
    return stack.to(memory_format=torch.channels_last) if channels_last else stack


def _train_step(stack: nn.Module, x: torch.Tensor) -> None:
    stack(x).sum().backward()
    for p in stack.parameters():
        p.grad = None


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def run_block_study(cfg: BlockStudyConfig, log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run the study; one row per (shared mode, channels, block type), with ratios to HorBlock."""
    cfg.validate()
    with torch_threads(cfg.threads):
        return _run_block_study(cfg, log or _LOG.info)


def _run_block_study(cfg: BlockStudyConfig, log: Callable[[str], None]) -> list[dict[str, Any]]:
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    rows = []
    for shared in cfg.shared:
        for dim in cfg.channels:
            x = torch.randn(cfg.batch, dim, cfg.size, cfg.size, generator=torch.Generator().manual_seed(cfg.seed))
            x = x.contiguous(memory_format=fmt)
            stacks = {k: _build_stack(k, dim, cfg.depth, shared == "lean", cfg.channels_last, cfg.seed)
                      for k in cfg.blocks}  # fmt: skip
            result = {k: dict(fwd=[], train=[]) for k in cfg.blocks}
            for k, stack in stacks.items():
                result[k]["saved"] = saved_activations_of(stack, x).bytes
                result[k]["rss"] = peak_rss(lambda s=stack, x=x: _train_step(s, x)) if cfg.measure_rss else None
            for r in progress(range(cfg.rounds + 1), f"blocks {shared} C={dim}", cfg.rounds + 1):  # round 0 warms up
                for k, stack in stacks.items():
                    with torch.no_grad():
                        fwd = _timed(lambda s=stack, x=x: s(x))
                    train = _timed(lambda s=stack, x=x: _train_step(s, x))
                    if r:
                        result[k]["fwd"].append(fwd)
                        result[k]["train"].append(train)
                log(f"  {shared} C={dim}: round {r}/{cfg.rounds} done")
            ref = result.get(REFERENCE)
            for k in cfg.blocks:
                res = result[k]
                fwd, train = statistics.median(res["fwd"]), statistics.median(res["train"])
                row = {
                    "block": BLOCK_VARIANTS[k][0], "key": k, "shared": shared, "channels": dim,
                    "saved_mib_per_block": res["saved"] / cfg.depth / MiB,
                    "peak_rss_mib": res["rss"] / MiB if res["rss"] is not None else None,
                    "fwd_ms": fwd, "train_ms": train,
                }  # fmt: skip
                if ref is not None:
                    row["memory_vs_hor"] = res["saved"] / ref["saved"]
                    row["fwd_speedup_vs_hor"] = statistics.median(ref["fwd"]) / fwd
                    row["train_speedup_vs_hor"] = statistics.median(ref["train"]) / train
                rows.append(row)
    return rows


def format_block_study(rows: Sequence[dict[str, Any]], cfg: BlockStudyConfig) -> str:
    """The study as a Markdown table with a one-line header of the configuration."""
    head = (f"{cfg.depth} blocks, batch {cfg.batch}, {cfg.size}×{cfg.size}, {cfg.threads} threads, "
            f"{'channels-last' if cfg.channels_last else 'NCHW'}, median of {cfg.rounds} rounds; "
            f"torch {torch.__version__}")  # fmt: skip
    columns = ["block", "shared", "channels", "saved_mib_per_block", "memory_vs_hor", "peak_rss_mib", "fwd_ms",
               "fwd_speedup_vs_hor", "train_ms", "train_speedup_vs_hor"]  # fmt: skip
    present = [c for c in columns if any(c in r for r in rows)]
    return head + "\n\n" + markdown_table(rows, present)
