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
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from starquad.bench.memory import MiB, peak_rss, saved_activations_of
from starquad.bench.table import markdown_table
from starquad.errors import ConfigError
from starquad.models.blocks import MixerBlock
from starquad.runtime import progress, torch_threads

__all__ = [
    "BLOCK_VARIANTS",
    "BlockStudyConfig",
    "format_block_study",
    "run_block_study",
]

_LOG = logging.getLogger(__name__)

# key -> (table name, MixerBlock arguments)
BLOCK_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "skip": ("SkipBlock", dict(kind="skip")),
    "conv": ("ConvBlock", dict(kind="conv")),
    "swin": ("SwinBlock", dict(kind="swin")),
    "hor": ("HorBlock (order 3)", dict(kind="hor", order=3)),
    "quadra": ("QuadraBlock", dict(kind="quadra", memory_efficient=False)),
    "quadra_me": ("QuadraBlock, memory-efficient", dict(kind="quadra", memory_efficient=True)),
}
REFERENCE = "hor"
SHARED_MODES = ("lean", "plain")


@dataclass
class BlockStudyConfig:
    """What to run. The paper: batch 64, 24 blocks, 64 and 128 channels (GPU); CPU defaults are smaller."""

    blocks: Sequence[str] = tuple(BLOCK_VARIANTS)
    channels: Sequence[int] = (64, 128)
    batch: int = 8
    size: int = 56
    depth: int = 24
    rounds: int = 5
    threads: int = 2
    shared: Sequence[str] = ("lean",)
    channels_last: bool = True
    seed: int = 0
    measure_rss: bool = True

    def validate(self) -> None:
        unknown = [b for b in self.blocks if b not in BLOCK_VARIANTS]
        if unknown:
            raise ConfigError(f"unknown block type(s) {unknown}; choose from: {', '.join(BLOCK_VARIANTS)}")
        bad_shared = [s for s in self.shared if s not in SHARED_MODES]
        if bad_shared:
            raise ConfigError(f"unknown shared mode(s) {bad_shared}; choose from: {', '.join(SHARED_MODES)}")
        for name in ("batch", "size", "depth", "rounds", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(c < 1 or c % 32 for c in self.channels):
            raise ConfigError(f"channels must be multiples of 32 (window-attention heads), got {self.channels}")


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
