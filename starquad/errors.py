"""Exceptions that carry a message meant for the user.

Every error that starquad raises because of *input* (a name, a file, a config value) derives from
:class:`StarquadError`; the CLI prints such errors as one line, without a traceback.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DatasetError", "DiskFullError", "InputShapeError", "StarquadError", "UnknownModelError"]


class StarquadError(Exception):
    """Base class for errors caused by what the user asked for, with a message that says how to fix it."""


class DatasetError(StarquadError, ValueError):
    """A dataset name, folder or file is missing, unknown or corrupt."""


class UnknownModelError(StarquadError, ValueError):
    """A model name is neither a starquad model nor a timm model."""


class ConfigError(StarquadError, ValueError):
    """A configuration value is out of range or of the wrong type."""


class DiskFullError(StarquadError, OSError):
    """No space was left on the device for a file starquad writes (the file is left as it was)."""


class InputShapeError(StarquadError, ValueError):
    """A tensor given to a model has the wrong number of dimensions or channels."""
