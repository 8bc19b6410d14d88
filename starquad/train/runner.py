"""A whole training run: data, model, timm optimizer/scheduler/mixup/EMA, the epoch loop, the run directory.

The same code runs on one CPU process or under ``torchrun --nproc_per_node=N`` (DDP: gloo on CPU,
nccl on CUDA); only rank 0 writes files. Determinism and resume: the training order of epoch ``e``
is a permutation drawn from ``seed + e`` (``DistributedSampler``; rank r takes every N-th item, so N
processes see the same global batches as one), and the global RNGs (augmentation, dropout, mixup)
are reseeded from ``(seed, epoch, rank)`` at the start of every epoch. A resumed run therefore
replays exactly what an uninterrupted run would have done, without pickling RNG objects.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import yaml
from torch.utils.data import DataLoader, DistributedSampler, Subset

from starquad.errors import ConfigError
from starquad.extras import install_hint, installed
from starquad.io import atomic_write
from starquad.models.checkpoint import load_state_checked
from starquad.runtime import torch_threads
from starquad.train.config import TrainConfig, read_yaml_mapping, resume_config
from starquad.train.curves import plot_curves
from starquad.train.engine import evaluate, train_one_epoch
from starquad.train.state import load_run_state, save_best, save_run_state

__all__ = ["SUMMARY_FIELDS", "build_loaders", "build_train_model", "eval_data_config", "eval_options", "evaluates",
           "replan_epochs", "train"]

_LOG = logging.getLogger(__name__)

SUMMARY_FIELDS = ["epoch", "lr", "train_loss", "eval_loss", "top1", "top5", "ema_top1", "epoch_seconds",
                  "images_per_s"]  # fmt: skip


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _init_distributed() -> torch.device:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def eval_data_config(cfg: TrainConfig, spec: Any, model_name: str | None = None) -> dict[str, Any]:
    """Evaluation input size, interpolation and crop fraction.

    ImageFolder data (no fixed size) follows the papers' protocol, timm's ``resolve_model_data_config`` on
    the model's cfg (224², bicubic, centre crop 0.875 for StarNet/QuadraNet); datasets with a native size
    (Fashion-MNIST's 28²) are resized whole (crop 1.0) unless ``crop_pct`` is given. ``img_size``,
    ``crop_pct`` and ``interpolation`` of ``cfg`` override either.
    """
    from timm.data import resolve_data_config

    from starquad.models import get_model_cfg

    if spec.img_size is None:
        model_cfg = get_model_cfg(model_name or cfg.model)
        base = resolve_data_config(pretrained_cfg={k: v for k, v in model_cfg.items() if k in (
            "input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std")}, use_test_size=True)  # fmt: skip
    else:
        base = {"input_size": (spec.in_chans, spec.img_size, spec.img_size), "interpolation": "bilinear",
                "crop_pct": 1.0}  # fmt: skip
    size = cfg.img_size or base["input_size"][-1]
    return {"img_size": size, "interpolation": cfg.interpolation or base["interpolation"],
            "crop_pct": cfg.crop_pct if cfg.crop_pct is not None else base["crop_pct"]}  # fmt: skip


def build_loaders(cfg: TrainConfig, rank: int = 0, world: int = 1) -> tuple[DataLoader, DataLoader, Any, int]:
    """Training and evaluation loaders, the dataset spec and the number of classes for ``cfg``.

    The class count is the spec's, or for ImageFolder data the number of class folders of the training split
    (the test split must have the same classes)."""
    from starquad.data import build_dataset, build_transform, dataset_spec

    spec = dataset_spec(cfg.data)
    if not spec.is_image:
        raise ConfigError(f"dataset '{cfg.data}' is not an image dataset; starquad train needs images")
    ev = eval_data_config(cfg, spec)
    img_size = ev["img_size"]
    mean, std = spec.mean or None, spec.std or None
    if cfg.batch_aug:
        train_tf = eval_tf = None  # the images stay uint8 arrays; _batched augments whole batches
    else:
        train_tf = build_transform(img_size, True, spec.in_chans, mean, std, scale=cfg.scale, ratio=cfg.ratio,
                                   hflip=cfg.hflip, color_jitter=cfg.color_jitter, auto_augment=cfg.aa,
                                   re_prob=cfg.reprob, no_aug=cfg.no_aug,
                                   interpolation=ev["interpolation"])  # fmt: skip
        eval_tf = build_transform(img_size, False, spec.in_chans, mean, std, crop_pct=ev["crop_pct"],
                                  interpolation=ev["interpolation"])  # fmt: skip
    if cfg.holdout:
        train_ds, eval_ds = _held_out(cfg, train_tf, eval_tf)
    else:
        train_ds = build_dataset(cfg.data, "train", cfg.data_dir, train_tf, subset=cfg.subset, seed=cfg.seed)
        eval_ds = build_dataset(cfg.data, "test", cfg.data_dir, eval_tf, subset=cfg.eval_subset, seed=cfg.seed)
    collate = None
    if cfg.batch_aug:
        train_ds, eval_ds, collate = _batched(cfg, spec, ev, train_ds, eval_ds)
    num_classes = spec.num_classes or len(train_ds.classes)
    if list(getattr(eval_ds, "classes", [])) != list(getattr(train_ds, "classes", [])):
        raise ConfigError(f"{cfg.data}: the train and test splits have different classes "
                          f"({len(train_ds.classes)} vs {len(eval_ds.classes)}); they must match")  # fmt: skip
    if num_classes < 2:
        raise ConfigError(f"{cfg.data}: found {num_classes} class(es) in the training split; need at least 2")
    sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    drop_last = len(train_ds) >= cfg.batch_size * world
    train_loader = DataLoader(train_ds, cfg.batch_size, sampler=sampler, num_workers=cfg.workers, drop_last=drop_last,
                              persistent_workers=cfg.workers > 0, collate_fn=collate)  # fmt: skip
    eval_part = Subset(eval_ds, list(range(rank, len(eval_ds), world)))  # exact: no padding, counts are summed
    eval_loader = DataLoader(eval_part, max(cfg.batch_size, 64), shuffle=False, num_workers=cfg.workers,
                             collate_fn=collate)  # fmt: skip
    return train_loader, eval_loader, spec, num_classes


HOLDOUT_SEED = 0  # the held-out images do not change with --seed: every run of a sweep is scored on the same ones


def _held_out(cfg: TrainConfig, train_tf: Any, eval_tf: Any) -> tuple[Any, Any]:
    """``cfg.holdout``: (the training split less ``cfg.holdout`` class-stratified images, those images with the
    evaluation transform); ``subset`` and ``eval_subset`` then draw from these two parts."""
    from starquad.data import ArrayImageDataset, build_dataset
    from starquad.data.datasets import stratified_subset

    full = build_dataset(cfg.data, "train", cfg.data_dir, train_tf)
    if not isinstance(full, ArrayImageDataset):
        raise ConfigError(f"holdout needs a dataset held in memory (fashion-mnist, digits, synthetic); '{cfg.data}' "
                          "is read per image: evaluate on its own validation split instead")  # fmt: skip
    if cfg.holdout >= len(full):
        raise ConfigError(f"holdout={cfg.holdout} leaves no training images ({cfg.data} has {len(full)}); hold out "
                          "fewer")  # fmt: skip
    held = np.zeros(len(full), dtype=bool)
    held[stratified_subset(full.targets, cfg.holdout, HOLDOUT_SEED)] = True

    def part(mask: np.ndarray, transform: Any, subset: int | None, seed: int, what: str) -> ArrayImageDataset:
        idx = np.flatnonzero(mask)
        if subset is not None:
            idx = idx[stratified_subset(full.labels[idx], subset, seed)]
        return full.take(idx, transform, what)

    return (part(~held, train_tf, cfg.subset, cfg.seed, "less the held-out images"),
            part(held, eval_tf, cfg.eval_subset, cfg.seed, "held out"))


def _batched(cfg: TrainConfig, spec: Any, ev: dict[str, Any], train_ds: Any, eval_ds: Any) -> tuple[Any, Any, Any]:
    """``cfg.batch_aug``: the two in-memory splits served a batch at a time, augmented as whole batches."""
    from starquad.data import ArrayBatches, ArrayImageDataset, BatchAugment, batch_as_is
    from starquad.data.transforms import normalisation

    if not isinstance(train_ds, ArrayImageDataset):
        raise ConfigError(f"batch_aug needs a dataset held in memory (fashion-mnist, digits, synthetic); "
                          f"'{cfg.data}' is read per image: set batch_aug: false")  # fmt: skip
    if ev["interpolation"] != "bilinear":
        raise ConfigError(f"batch_aug resizes bilinearly; interpolation '{ev['interpolation']}' needs batch_aug: "
                          "false")  # fmt: skip
    mean, std = normalisation(spec.mean or None, spec.std or None, spec.in_chans)
    size = ev["img_size"]
    train_aug = BatchAugment(size, spec.in_chans, mean, std, training=not cfg.no_aug, scale=cfg.scale,
                             ratio=cfg.ratio, hflip=cfg.hflip, re_prob=cfg.reprob, crop_pct=ev["crop_pct"])  # fmt: skip
    eval_aug = BatchAugment(size, spec.in_chans, mean, std, training=False, crop_pct=ev["crop_pct"])
    return ArrayBatches(train_ds, train_aug), ArrayBatches(eval_ds, eval_aug), batch_as_is


def _clock() -> float:
    return time.perf_counter()


def evaluates(epoch: int, total: int, interval: int) -> bool:
    """Whether epoch ``epoch`` (0-based) of a ``total``-epoch run is evaluated: every ``interval``-th one and
    always the last (``interval`` 0: the last only)."""
    return epoch == total - 1 or (interval > 0 and (epoch + 1) % interval == 0)


def replan_epochs(limit: float, elapsed: float, epoch_seconds: Sequence[float], epoch: int, total: int,
                  ceiling: int, eval_seconds: float = 0.0, eval_interval: int = 1) -> int:  # fmt: skip
    """``--time-limit``'s policy: the total epochs a run should have after ``epoch`` finished ones took ``elapsed`` of
    ``limit`` seconds. The next epochs are assumed as slow as the mean of the last three (``epoch_seconds``: the
    machine's speed drifts, and an early slow epoch should not decide the run), and every evaluation a plan has
    left (:func:`evaluates`; the one of epoch ``epoch - 1``, not yet run, included) as ``eval_seconds``. Shorter
    than ``total`` when those do not fit; longer (up to ``ceiling``) only with 15% to spare, so that noise does not
    swing the plan to and fro; never fewer than ``epoch``."""
    recent = epoch_seconds[-3:]
    per_epoch = sum(recent) / len(recent)
    left = max(0.0, limit - elapsed)

    def fits(n: int, margin: float = 1.0) -> bool:  # epochs epoch..n-1 and the evaluations of epochs epoch-1..n-1
        k = eval_interval
        evals = (n // k - max(epoch - 1, 0) // k if k else 0) + (0 if k and n % k == 0 else 1)
        return margin * ((n - epoch) * per_epoch + evals * eval_seconds) <= left

    if not fits(total):
        fit = epoch
        while fit + 1 < total and fits(fit + 1):
            fit += 1
        return fit
    fit = total
    while fit < ceiling and fits(fit + 1, 1.15):
        fit += 1
    return fit


def _broadcast_int(value: int, device: torch.device) -> int:
    """Rank 0's ``value`` on every process (the value itself without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.broadcast(t, 0)
    return int(t.item())


def eval_options(cfg: TrainConfig, spec: Any) -> dict[str, Any]:
    """:func:`~starquad.train.engine.evaluate`'s options for ``cfg``; a shifted view's border is a black pixel
    after the dataset's normalisation, as in a zero-padded random crop."""
    from starquad.data.transforms import normalisation

    mean, std = normalisation(spec.mean or None, spec.std or None, spec.in_chans)
    return {"amp": cfg.amp, "channels_last": cfg.channels_last, "tta_flip": cfg.tta_flip, "tta_shift": cfg.tta_shift,
            "tta_fill": -torch.tensor(mean) / torch.tensor(std)}  # fmt: skip


def build_ema(cfg: TrainConfig, model: nn.Module) -> Any:
    """timm's ``ModelEmaV3`` of ``model`` as ``cfg`` asks (``None`` without ``model_ema``)."""
    from timm.utils import ModelEmaV3

    if not cfg.model_ema:
        return None
    return ModelEmaV3(model, decay=cfg.model_ema_decay, use_warmup=cfg.model_ema_warmup)


def build_train_model(cfg: TrainConfig, num_classes: int, in_chans: int) -> nn.Module:
    """The model of ``cfg`` for data of ``num_classes`` classes and ``in_chans`` channels."""
    from starquad.models import create_model

    clash = sorted({"num_classes", "in_chans"} & set(cfg.model_kwargs))
    if clash:
        raise ConfigError(f"model_kwargs must not set {', '.join(clash)}: they come from the dataset "
                          f"('{cfg.data}': {num_classes} classes, {in_chans} channel(s))")  # fmt: skip
    kwargs = dict(num_classes=num_classes, in_chans=in_chans, **cfg.model_kwargs)
    if cfg.drop_path > 0:
        kwargs["drop_path_rate"] = cfg.drop_path
    return create_model(cfg.model, **kwargs)


def _read_summary(path: Path, upto_epoch: int) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [row for row in csv.DictReader(f) if int(row["epoch"]) <= upto_epoch]


def _write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, buffer.getvalue())


def _fmt(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v


def _resolve(cfg: TrainConfig, asked: set[str] | None) -> tuple[TrainConfig, list[str]]:
    """``cfg`` checked; for ``--resume``, the saved run's config with the allowed changes (see resume_config)."""
    cfg.validate()
    if not cfg.resume:
        return cfg, []
    saved_path = Path(cfg.resume) / "args.yaml"
    values = read_yaml_mapping(saved_path, f"--resume {cfg.resume}: args.yaml", " (not a starquad run directory?)",
                               allow_empty=False)  # fmt: skip
    saved = TrainConfig.from_dict(values, source=str(saved_path))
    return resume_config(saved, cfg, asked)


def _remove_stale_temp_files(run_dir: Path) -> list[str]:
    """Temp files that a killed atomic write left behind (``.NAME.*.tmp``, see starquad.io)."""
    stale = sorted(p.name for p in run_dir.glob(".*.tmp") if p.is_file())
    for name in stale:
        (run_dir / name).unlink(missing_ok=True)
    return stale


def train(cfg: TrainConfig, log: Callable[[str], None] | None = None, *, asked: set[str] | None = None
          ) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) training; returns the final metrics. Only rank 0 writes and logs.

    Args:
        cfg: the run's options. With ``cfg.resume`` set, the saved run's options apply, changed by those of
            ``cfg`` that were asked for (see :func:`~starquad.train.config.resume_config`).
        log: progress printer (default: this module's logger at INFO; the CLI shows INFO).
        asked: on resume, the names of the options the caller set (default: those of ``cfg`` that differ from
            their defaults; the CLI passes the recipe keys and flags it was given, so ``--epochs 10`` counts
            even though 10 is the default).

    The thread count ``cfg.threads`` holds for the run and is restored afterwards.
    """
    cfg, changes = _resolve(cfg, asked)
    with torch_threads(cfg.threads):
        return _run(cfg, changes, log or _LOG.info)


def _run(cfg: TrainConfig, changes: list[str], log: Callable[[str], None]) -> dict[str, Any]:
    from timm.data import Mixup
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    from starquad.bench.flops import count_flops

    started = _clock()
    resume_dir = Path(cfg.resume) if cfg.resume else None
    device = _init_distributed()
    rank, world = _dist_info()
    is_main = rank == 0
    say = log if is_main else (lambda m: None)
    _seed_everything(cfg.seed)
    out = Path(cfg.output)
    train_loader, eval_loader, spec, num_classes = build_loaders(cfg, rank, world)
    model = build_train_model(cfg, num_classes, spec.in_chans)
    img_size = eval_data_config(cfg, spec)["img_size"]
    flops = count_flops(model, (spec.in_chans, img_size, img_size))
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = create_optimizer_v2(model, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                    momentum=cfg.momentum)  # fmt: skip
    updates_per_epoch = (len(train_loader) + cfg.grad_accum - 1) // cfg.grad_accum

    def plan(epochs: int) -> tuple[Any, int]:  # the scheduler for `epochs` (+ cooldown), and the total epochs
        return create_scheduler_v2(optimizer, sched=cfg.sched, num_epochs=epochs, warmup_epochs=cfg.warmup_epochs,
                                   warmup_lr=cfg.warmup_lr, min_lr=cfg.min_lr, cooldown_epochs=cfg.cooldown_epochs,
                                   step_on_epochs=False, updates_per_epoch=updates_per_epoch)  # fmt: skip

    scheduler, total_epochs = plan(cfg.epochs)
    ema = build_ema(cfg, model)
    mixup_fn = None
    if cfg.mixup > 0 or cfg.cutmix > 0:
        mixup_fn = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, prob=cfg.mixup_prob,
                         label_smoothing=cfg.smoothing, num_classes=num_classes)  # fmt: skip
        loss_fn: nn.Module = SoftTargetCrossEntropy()
    elif cfg.smoothing > 0:
        loss_fn = LabelSmoothingCrossEntropy(cfg.smoothing)
    else:
        loss_fn = nn.CrossEntropyLoss()

    start_epoch, best_top1, rows = 0, -1.0, []
    if resume_dir is not None:
        weights, state = load_run_state(resume_dir)
        load_state_checked(model, weights, str(resume_dir / "last.safetensors"))
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
        start_epoch, best_top1 = int(state["epoch"]) + 1, float(state["best_top1"])
        # The state is the commit point and carries the summary rows, so a kill between writing the state
        # and summary.csv loses no row: the file is rewritten from the state here.
        rows = list(state.get("rows") or _read_summary(resume_dir / "summary.csv", start_epoch - 1))
        if start_epoch >= total_epochs:
            raise ConfigError(f"--resume {resume_dir}: the run already finished all {total_epochs} epochs; pass "
                              f"--epochs N with N > {cfg.epochs} to train more")  # fmt: skip
        if is_main:
            stale = _remove_stale_temp_files(resume_dir)
            if stale:
                say(f"removed {len(stale)} temp file(s) of an interrupted write: {', '.join(stale)}")
            _write_summary(out / "summary.csv", rows)
        say(f"resuming {resume_dir} after epoch {start_epoch - 1} (best top-1 {best_top1:.2f}%)"
            + (f"; changed: {', '.join(changes)}" if changes else ""))  # fmt: skip
        if any(c.startswith("epochs:") for c in changes):
            say(f"the schedule is re-planned for {cfg.epochs} epochs (+{cfg.cooldown_epochs} cooldown): epochs "
                f"{start_epoch}..{total_epochs - 1} follow the new {cfg.sched} curve from update "
                f"{start_epoch * updates_per_epoch}")  # fmt: skip
    train_model = model
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                          else None)  # fmt: skip
    if is_main:
        atomic_write(out / "args.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    eff_batch = cfg.batch_size * cfg.grad_accum * world
    say(f"{cfg.model}: {flops.params / 1e6:.3f}M params, {flops.macs / 1e6:.1f}M MACs at "
        f"{spec.in_chans}×{img_size}×{img_size}; {cfg.data}: {len(train_loader.dataset)} train images, "
        f"{num_classes} classes; {len(train_loader)} steps/epoch × {total_epochs - start_epoch} epochs; effective "
        f"batch {eff_batch} ({cfg.batch_size} × {cfg.grad_accum} accum × {world} process(es)); {device}, "
        f"{torch.get_num_threads()} thread(s)")  # fmt: skip
    plots = installed("matplotlib")
    if not plots:
        say(f"{install_hint('matplotlib', 'curves.png')}; training goes on without it")
    num_updates = start_epoch * updates_per_epoch
    metrics: dict[str, Any] = {}
    eval_kw = eval_options(cfg, spec)
    # --time-limit: the most epochs; each epoch's wall time less its evaluation; one evaluation's wall time
    ceiling, epoch_seconds, eval_seconds = cfg.epochs, [], None
    epoch = start_epoch
    while epoch < total_epochs:
        epoch_started = _clock()
        train_loader.sampler.set_epoch(epoch)
        _seed_everything((cfg.seed * 1_000_003 + epoch) * 1009 + rank)
        scheduler.step_update(num_updates=num_updates)
        lr = optimizer.param_groups[0]["lr"]
        stats = train_one_epoch(train_model, train_loader, optimizer, loss_fn, device=device, epoch=epoch,
                                scheduler=scheduler, num_updates=num_updates, mixup_fn=mixup_fn, ema=ema,
                                clip_grad=cfg.clip_grad, amp=cfg.amp, grad_accum=cfg.grad_accum,
                                channels_last=cfg.channels_last, log=say, log_interval=cfg.log_interval,
                                show_progress=is_main)  # fmt: skip
        num_updates = stats.updates
        if cfg.time_limit is not None and epoch + 1 < total_epochs:  # re-plan before evaluating: the last decides
            if eval_seconds is None:  # no evaluation timed yet: time one batch of it
                probe_started = _clock()
                evaluate(model, itertools.islice(eval_loader, 1), device, **eval_kw)
                eval_seconds = (_clock() - probe_started) * len(eval_loader) * (2 if ema is not None else 1)
            used = _clock() - started
            fit = _broadcast_int(replan_epochs(cfg.time_limit, used, [*epoch_seconds, _clock() - epoch_started],
                                               epoch + 1, total_epochs, ceiling + cfg.cooldown_epochs, eval_seconds,
                                               cfg.eval_interval), device)  # fmt: skip
            if fit != total_epochs:  # re-plan: the cosine curve ends where the budget does
                new_epochs = max(1, fit - cfg.cooldown_epochs)
                say(f"time limit {cfg.time_limit:g} s: {used:.0f} s used after {epoch + 1} epoch(s), so "
                    + (f"the schedule is re-planned for {new_epochs} epochs (+{cfg.cooldown_epochs} cooldown), not "
                       f"{cfg.epochs}" if fit > epoch + 1 else "the run stops here"))  # fmt: skip
                cfg = dataclasses.replace(cfg, epochs=new_epochs)
                scheduler, planned = plan(new_epochs)
                total_epochs = max(epoch + 1, min(planned, fit))
                if is_main:  # a --resume follows the re-planned schedule
                    atomic_write(out / "args.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        eval_started, ema_top1 = _clock(), None
        evaluated = evaluates(epoch, total_epochs, cfg.eval_interval)
        if evaluated:
            metrics = evaluate(model, eval_loader, device, **eval_kw)
            if ema is not None:
                ema_top1 = evaluate(ema.module, eval_loader, device, **eval_kw)["top1"]
            eval_seconds = _clock() - eval_started
        row = {"epoch": epoch, "lr": lr, "train_loss": stats.loss, "eval_loss": metrics["loss"] if evaluated else None,
               "top1": metrics["top1"] if evaluated else None, "top5": metrics["top5"] if evaluated else None,
               "ema_top1": ema_top1, "epoch_seconds": stats.seconds,
               "images_per_s": stats.samples / stats.seconds}  # fmt: skip
        rows.append({k: _fmt(v) for k, v in row.items()})
        if is_main:
            if evaluated and metrics["top1"] > best_top1:
                best_top1 = metrics["top1"]
                save_best(out, model.state_dict(), epoch, best_top1)
            state = {"epoch": epoch, "optimizer": optimizer.state_dict(), "best_top1": best_top1, "rows": rows}
            if ema is not None:
                state["ema"] = ema.state_dict()
            save_run_state(out, model.state_dict(), state)  # the commit point of this epoch
            _write_summary(out / "summary.csv", rows)
            if plots:
                plot_curves(rows, out / "curves.png")
        result = (f"eval loss {metrics['loss']:.4f}, top-1 {metrics['top1']:.2f}%"
                  f"{f' (EMA {ema_top1:.2f}%)' if ema_top1 is not None else ''}, top-5 {metrics['top5']:.2f}%"
                  if evaluated else "not evaluated (eval_interval)")  # fmt: skip
        say(f"epoch {epoch}: train loss {stats.loss:.4f}, {result}, {stats.seconds:.1f} s, "
            f"{stats.samples / stats.seconds:.0f} img/s")  # fmt: skip
        epoch_seconds.append(_clock() - epoch_started - (eval_seconds if evaluated else 0.0))
        epoch += 1
    if world > 1:
        dist.barrier()
    return {"best_top1": best_top1, "epochs": total_epochs, **metrics, "output": str(out), "num_classes": num_classes,
            "in_chans": spec.in_chans}
