"""Atomic file writes (the one place where starquad puts bytes on disk that must not be half-written), and the
per-machine cache folder.

A write goes to a temporary file in the same folder, is flushed and fsync'ed, then renamed over the
target (atomic on POSIX), and the folder is fsync'ed so the rename itself survives a crash. A reader
therefore sees the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from starquad.errors import DiskFullError

__all__ = ["atomic_write", "cache_dir"]


def cache_dir(*parts: str) -> Path:
    """starquad's per-machine cache folder (built extensions, latency tables), or a folder inside it:
    ``$STARQUAD_CACHE``, else ``$XDG_CACHE_HOME/starquad``, else ``~/.cache/starquad``. Not created here."""
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("STARQUAD_CACHE") or xdg / "starquad").joinpath(*parts)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a result file should be as readable as one from open()
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise DiskFullError(f"no space left on the device to write {path}: free some space or write somewhere "
                                "else; the file is as it was before") from e  # fmt: skip
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path
