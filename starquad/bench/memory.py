"""Training memory: exact bytes of the activations autograd saves for backward, and peak resident memory.

:func:`saved_activations` runs a forward pass under :func:`torch.autograd.graph.saved_tensors_hooks` and
adds up the *storages* of every tensor saved for backward — once per storage, since views share one
(``x_a`` and ``x_b`` split from one conv output keep the whole output alive) — leaving out the
parameters' storages. Custom autograd functions save through the same hooks, so nothing escapes.
This is deterministic and device-independent, unlike an allocator's peak.

:func:`peak_rss` is the coarse, whole-process figure: the rise of the resident set's high-water mark
(``VmHWM``, reset through ``/proc/self/clear_refs``) over the resident set before the call (Linux).
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["SavedActivations", "peak_rss", "saved_activations", "saved_activations_of"]

MiB = 2**20


@dataclass(frozen=True)
class SavedActivations:
    """What one forward pass saved for backward."""

    bytes: int  # unique storages, parameters excluded
    storages: int
    tensors: int  # saved tensors (with repeats and parameters)

    @property
    def mib(self) -> float:
        return self.bytes / MiB


def saved_activations(fn: Callable[[], Any], exclude: Iterable[torch.Tensor] = ()) -> tuple[SavedActivations, Any]:
    """Run ``fn()`` (a forward pass) and measure the activations it saves for backward.

    Args:
        fn: the forward pass; its output is returned so the caller can run backward (or drop it).
        exclude: tensors whose storages are not activations (pass ``model.parameters()``).

    Returns:
        ``(SavedActivations, fn())``.
    """
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    storages: dict[int, int] = {}
    count = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal count
        count += 1
        storage = t.untyped_storage()
        # Keyed by address: every saved storage stays alive with the graph, so no address is reused.
        if storage.data_ptr() not in excluded and storage.nbytes():
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return SavedActivations(sum(storages.values()), len(storages), count), out


def saved_activations_of(model: torch.nn.Module, x: torch.Tensor) -> SavedActivations:
    """Activations one forward of ``model`` (in its current mode) on ``x`` saves for backward, parameters excluded."""
    stats, out = saved_activations(lambda: model(x), exclude=model.parameters())
    del out
    return stats


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def _release_free_memory() -> None:
    """Hand memory that glibc's malloc keeps after ``free`` back to the OS, so the baseline is honest."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the figure may then under-count reused memory


def peak_rss(fn: Callable[[], Any]) -> int | None:
    """Bytes by which the process's peak resident set rose above its current size during ``fn()``.

    Linux only (``/proc``); returns ``None`` where the high-water mark cannot be reset or read.
    """
    gc.collect()
    _release_free_memory()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
        before = _status_kib("VmRSS")
    except OSError:
        return None
    fn()
    return max(0, _status_kib("VmHWM") - before) * 1024
