"""Process-wide settings that library code may need for a while and must give back (thread counts), and what
this machine is (:func:`cpu_model`).

nanoGPT and timm set threads at the top of a script. A library function that needs a given count (a fair
benchmark, a training run asked for ``threads=2``) sets it inside :func:`torch_threads` and the count it
found is restored on the way out, also on errors — so no starquad call leaves ``torch.get_num_threads()``
changed behind it.
"""

from __future__ import annotations

import contextlib
import platform
import sys
from collections.abc import Iterable, Iterator

from starquad.errors import ConfigError

__all__ = ["cpu_model", "progress", "torch_threads"]


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` gives it (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``threads`` intra-op threads (None: leave torch's count); yields the count in force."""
    import torch

    before = torch.get_num_threads()
    if threads is None:
        yield before
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}")
    if threads == before:  # nothing to change (cheap inside timed loops)
        yield threads
        return
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


def progress(iterable: Iterable, desc: str, total: int | None = None, leave: bool = False) -> Iterable:
    """A tqdm bar over ``iterable`` when stderr is a terminal; the bare iterable otherwise (logs, CI, pipes)."""
    if not sys.stderr.isatty():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=leave, dynamic_ncols=True)
