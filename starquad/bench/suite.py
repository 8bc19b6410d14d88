"""Whole-model benchmarks: latency, throughput, memory and FLOPs of any models (ours or timm's), one row each.

Every function takes model names (``timm:NAME`` forces timm's model; shell patterns such as
``'starnet_s[1-4]'`` are expanded over starquad's and timm's registries by :func:`expand_models`) and
returns plain dict rows that :func:`starquad.bench.markdown_table` prints and the CLI writes as JSON/CSV.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch

from starquad.bench.backends import gemm_peak_gflops, make_runner
from starquad.bench.config import PAPER_PROTOCOL, LatencyConfig
from starquad.bench.flops import count_flops, model_stats
from starquad.bench.latency import time_call
from starquad.bench.memory import MiB, peak_rss, saved_activations_of
from starquad.bench.published import published_top1
from starquad.errors import ConfigError, UnknownModelError
from starquad.runtime import progress, torch_threads

__all__ = [
    "PAPER_PROTOCOL",
    "LatencyConfig",
    "bench_flops",
    "bench_latency",
    "bench_memory",
    "bench_throughput",
    "expand_models",
    "input_size_of",
    "rows_to_csv",
]

_LOG = logging.getLogger(__name__)


def expand_models(patterns: Sequence[str]) -> list[str]:
    """Model names from names or shell patterns (``*?[``), in order, without repeats.

    A pattern matches starquad's models and timm's (timm's names that starquad shadows come back as
    ``timm:NAME``, as :func:`starquad.models.list_models` lists them)."""
    from starquad.models import get_model_cfg, list_models

    names: list[str] = []
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            found = [n for n in list_models(None, include_timm=True) if fnmatch.fnmatchcase(n, pattern)]
            if not found:
                raise UnknownModelError(f"no starquad or timm model matches '{pattern}'")
        else:
            get_model_cfg(pattern)  # an unknown name raises UnknownModelError with close-match suggestions
            found = [pattern]
        names += [n for n in found if n not in names]
    return names


def input_size_of(name: str, img_size: int | None = None) -> tuple[int, int, int]:
    """``(C, H, W)``: the model cfg's input size, or a square ``img_size`` with the cfg's channels."""
    from starquad.models import get_model_cfg

    c, h, w = get_model_cfg(name).get("input_size", (3, 224, 224))
    if img_size is not None:
        if img_size < 16:
            raise ConfigError(f"img_size must be >= 16, got {img_size}")
        h = w = img_size
    return int(c), int(h), int(w)


def bench_latency(names: Sequence[str], cfg: LatencyConfig, log: Callable[[str], None] | None = None,
                  seed: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """One row per (model, backend): latency (ms), p10/p90, params, MACs, published top-1, and with
    ``cfg.roofline`` the achieved GFLOP/s (2·MACs / latency) as a percentage of the backend's GEMM peak."""
    cfg.validate()
    with torch_threads(cfg.threads):
        return _bench_latency(names, cfg, log or _LOG.info, seed)


def _bench_latency(names: Sequence[str], cfg: LatencyConfig, log: Callable[[str], None], seed: int) -> list[dict]:
    from starquad.deploy import prepare_for_inference
    from starquad.models import create_model

    peaks = {}
    if cfg.roofline:
        for b in cfg.backends:
            peaks[b] = gemm_peak_gflops(b, cfg.threads, precision=cfg.precision)
            log(f"{b}: square-GEMM peak {peaks[b]:.1f} GFLOP/s with {cfg.threads} thread(s)")
    rows = []
    for name in progress(names, "latency", len(names)):
        model = create_model(name).eval()
        size = input_size_of(name, cfg.img_size)
        # params and MACs of the form that is timed (MobileOne's inference form has a quarter of its training MACs)
        count = count_flops(prepare_for_inference(model) if cfg.reparameterize else model, size)
        x = torch.randn(cfg.batch, *size, generator=torch.Generator().manual_seed(seed))
        for backend in cfg.backends:
            run = make_runner(model, backend, x, cfg.threads, cfg.precision, cfg.reparameterize, cfg.channels_last)
            stats = time_call(run, warmup=cfg.warmup, runs=cfg.runs, label=f"{name} [{backend}]")
            ms = stats.mean_ms if cfg.statistic == "mean" else stats.median_ms
            row = {
                "model": name, "backend": backend, "batch": cfg.batch, "input": "×".join(map(str, size)),
                "ms": ms, "statistic": cfg.statistic, "p10_ms": stats.p10_ms, "p90_ms": stats.p90_ms,
                "params_m": count.params / 1e6, "macs_m": count.macs / 1e6, "top1": published_top1(name),
                "gflops": 2 * count.macs * cfg.batch / (ms * 1e-3) / 1e9,
            }  # fmt: skip
            if backend in peaks:
                row["roofline_pct"] = 100 * row["gflops"] / peaks[backend]
                row["peak_gflops"] = peaks[backend]
            rows.append(row)
            log(f"{name} [{backend}]: {ms:.2f} ms ({cfg.statistic} of {cfg.runs})")
    return rows


def bench_throughput(names: Sequence[str], batch: int = 32, threads: int = 2, img_size: int | None = None,
                     runs: int = 10, train: bool = True, channels_last: bool = False,
                     log: Callable[[str], None] | None = None, seed: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """Samples per second at ``batch`` in PyTorch eager: inference (re-parameterised, ``inference_mode``)
    and, with ``train``, one training step (forward, backward, SGD update) in train mode."""
    if batch < 1 or runs < 1:
        raise ConfigError(f"batch and runs must be >= 1, got {batch}, {runs}")
    with torch_threads(threads):
        return _bench_throughput(names, batch, img_size, runs, train, channels_last, log or _LOG.info, seed)


def _bench_throughput(names: Sequence[str], batch: int, img_size: int | None, runs: int, train: bool,
                      channels_last: bool, log: Callable[[str], None], seed: int) -> list[dict[str, Any]]:  # fmt: skip
    from starquad.deploy import prepare_for_inference
    from starquad.models import create_model

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    rows = []
    for name in progress(names, "throughput", len(names)):
        size = input_size_of(name, img_size)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, *size, generator=gen).contiguous(memory_format=fmt)
        model = create_model(name).to(memory_format=fmt)
        deployed = prepare_for_inference(model)

        def infer(m=deployed, x=x):
            with torch.inference_mode():
                return m(x)

        row = {"model": name, "batch": batch, "input": "×".join(map(str, size)),
               "infer_samples_s": batch / (time_call(infer, warmup=2, runs=runs, label=f"{name} inference").median_ms
                                           * 1e-3)}  # fmt: skip
        if train:
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
            y = torch.randint(0, model.num_classes if hasattr(model, "num_classes") else 1000, (batch,), generator=gen)

            def step(m=model, opt=opt, x=x, y=y):
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(m(x), y).backward()
                opt.step()

            stats = time_call(step, warmup=2, runs=runs, label=f"{name} training step")
            row["train_samples_s"] = batch / (stats.median_ms * 1e-3)
        rows.append(row)
        log(f"{name}: {row['infer_samples_s']:.1f} samples/s inference")
    return rows


def bench_memory(names: Sequence[str], batch: int = 2, img_size: int | None = None, rss: bool = True,
                 seed: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """Memory of one training step of each model: exact activation bytes saved for backward (storages
    counted once, parameters excluded), the peak-RSS rise of the step (forward + backward), CUDA max
    allocated when a GPU is used (``None`` otherwise); ratios of saved bytes to the first model."""
    from starquad.models import create_model

    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for name in names:
        size = input_size_of(name, img_size)
        model = create_model(name).train().to(device)
        x = torch.randn(batch, *size, generator=torch.Generator().manual_seed(seed)).to(device)
        try:
            stats = saved_activations_of(model, x)
        except ValueError as e:
            if "Expected more than 1 value per channel" not in str(e):
                raise
            raise ConfigError(f"{name}: batch {batch} at {size[1]}×{size[2]} leaves a BatchNorm layer one value per "
                              "channel in training mode; use --batch 2 or more, or a larger --img-size") from e
        row = {"model": name, "input": f"{batch}×{'×'.join(map(str, size))}", "saved_mib": stats.bytes / MiB,
               "saved_tensors": stats.tensors}  # fmt: skip

        def step(m=model, x=x):
            m(x).float().sum().backward()
            m.zero_grad(set_to_none=True)

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            step()
            torch.cuda.synchronize()
            row["cuda_max_alloc_mib"] = torch.cuda.max_memory_allocated() / MiB
        if rss and device.type == "cpu":
            rise = peak_rss(step)
            row["peak_rss_rise_mib"] = None if rise is None else rise / MiB
        rows.append(row)
    for row in rows:
        row["saved_ratio"] = row["saved_mib"] / rows[0]["saved_mib"] if rows[0]["saved_mib"] else None
    return rows


def bench_flops(names: Sequence[str], reparameterize: bool = True, img_size: int | None = None
                ) -> list[dict[str, Any]]:  # fmt: skip
    """Params and FLOPs (conv/linear MACs, fvcore's total, element-wise products) beside the papers' figures,
    of the inference form that :func:`bench_latency` times (``reparameterize=False``: the model as built), at
    each model's cfg input size or a square ``img_size``."""
    return [model_stats(name, reparameterize=reparameterize,
                        input_size=None if img_size is None else input_size_of(name, img_size)) for name in names]


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as CSV text (columns: the union of keys, in first-seen order)."""
    import csv
    import io

    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
