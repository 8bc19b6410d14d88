"""Options declared once, as dataclass fields: the one way every starquad config (training, search) declares its
options.

A field made with :func:`option` carries its help text, extra flag spellings, range and choices in its metadata.
Everything else derives from that declaration:

* the command-line flags (:meth:`Options.add_arguments`: one flag per field, the help and default read from the
  field, so nothing is restated by hand; every flag defaults to None so a recipe or preset can set the value);
* type coercion and checks (:meth:`Options.from_dict`, :meth:`Options.validate`): the one place a recipe value, a
  flag or an API argument is checked. ``lr: 1e-3`` (a string to PyYAML) becomes 0.001, ``warmup_epochs: one`` is
  refused by name, an unknown key gets the closest known one.

Torch-free, so the CLI builds its parsers without importing torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import typing
from typing import Any, ClassVar

import yaml

from starquad.errors import ConfigError

__all__ = ["Options", "option", "unknown_keys_message", "yaml_mapping"]

# Names other tools give an option (timm's train.py, Keras, plain English) -> ours, for "did you mean".
SYNONYMS = {"learning_rate": "lr", "num_epochs": "epochs", "batch": "batch_size", "dataset": "data",
            "wd": "weight_decay", "label_smoothing": "smoothing", "grad_accum_steps": "grad_accum",
            "warmup": "warmup_epochs", "num_workers": "workers", "output_dir": "output"}  # fmt: skip


def option(default: Any = None, help: str = "", *, flags: tuple[str, ...] = (), low: float | None = None,
           high: float | None = None, low_open: bool = False, choices: tuple[Any, ...] | None = None,
           required: bool = False, positional: bool = False, const: Any = None, resumable: bool = False,
           default_factory: Any = None) -> Any:  # fmt: skip
    """A config field with its CLI help, extra flag spellings, range ``[low, high]`` (``low_open``: ``(low,
    high]``), allowed values (``choices``), whether the command line must give it (``required``) or gives it
    without a flag (``positional``), the value of its flag given alone (``const``: ``--ray`` means ``--ray
    local``), and whether a resumed run may change it (``resumable``)."""
    meta = dict(help=help, flags=flags, low=low, high=high, low_open=low_open, choices=choices, required=required,
                positional=positional, const=const, resumable=resumable)  # fmt: skip
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def unknown_keys_message(unknown: list[str], known, help_command: str) -> str:
    """``unknown key(s) learning_rate (did you mean lr?)``: the closest known keys, not the whole list."""
    parts = []
    for key in unknown:
        close = [SYNONYMS[key]] if SYNONYMS.get(key) in known else difflib.get_close_matches(key, list(known), n=2,
                                                                                            cutoff=0.6)  # fmt: skip
        parts.append(f"{key} (did you mean {' or '.join(close)}?)" if close else key)
    return f"unknown key(s) {', '.join(parts)}; '{help_command}' lists every option"


def yaml_mapping(text: str) -> dict:
    """An argparse type: a YAML/JSON mapping such as ``'{stem_stride: 1}'``."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise argparse.ArgumentTypeError(f"not YAML: {' '.join(str(e).split())}") from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a mapping such as '{{stem_stride: 1}}', got {text!r}")
    return value


class Options:
    """Mixin for a ``@dataclass`` whose fields are made with :func:`option`. Subclasses extend :meth:`validate`
    with the checks that relate two fields (calling ``super().validate()`` first)."""

    HELP_COMMAND: ClassVar[str] = "starquad --help"  # where the user finds every option
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}  # named sets of values (e.g. 'quick') under the defaults

    def validate(self) -> None:
        """Range and choice checks of every field, from the metadata."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            for v in value if isinstance(value, tuple) else (value,):
                _check_field(f, v)

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON/YAML values (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config"):
        """A checked config from a mapping (recipe, flags, saved run): unknown keys, wrong types and
        out-of-range values are refused with the key's name and ``source``."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected a mapping of option: value, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: {unknown_keys_message(unknown, known, cls.HELP_COMMAND)}")
        hints = typing.get_type_hints(cls)
        try:
            cfg = cls(**{k: _coerce(v, hints[k], k) for k, v in values.items()})
            cfg.validate()
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
        return cfg

    @classmethod
    def preset(cls, name: str | None, source: str = "options", **values: Any):
        """A checked config: the named preset (None: the defaults) with ``values`` over it."""
        if name is not None and name not in cls.PRESETS:
            raise ConfigError(f"unknown preset '{name}'; choose one of: {', '.join(cls.PRESETS)}")
        return cls.from_dict({**cls.PRESETS.get(name, {}), **values}, source=source)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None,
                      exclude: tuple[str, ...] = ()) -> None:  # fmt: skip
        """One flag per field (``--field-name`` plus the metadata's spellings), defaulting to None so that a
        recipe or preset can set the value and a flag given overrides it; a value that arrives is checked once, by
        :meth:`from_dict`. The help shows the field's default."""
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if (only is not None and f.name not in only) or f.name in exclude:
                continue
            names = ("--" + f.name.replace("_", "-"), *f.metadata["flags"])
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
            shown = None if f.metadata.get("required") else shown
            text = f.metadata["help"] + (f" (default: {shown})" if shown not in (None, {}, "") else "")
            text = text.replace("%", "%%")
            hint = hints[f.name]
            if type(None) in typing.get_args(hint):  # X | None: the flag takes an X
                hint = next(a for a in typing.get_args(hint) if a is not type(None))
            required = bool(f.metadata.get("required"))
            kwargs: dict[str, Any] = dict(dest=f.name, default=None, help=text, **({"required": True} if required
                                                                                 else {}))  # fmt: skip
            if f.metadata.get("positional"):  # argparse names a positional by its dest
                parser.add_argument(f.name, metavar=f.name.upper(), nargs=None if required else "?", help=text)
            elif f.metadata.get("const") is not None:
                parser.add_argument(*names, nargs="?", const=f.metadata["const"], metavar=f.name.upper(), **kwargs)
            elif hint is bool and f.name.startswith("no_"):  # already a negative: --no-aug, not --no-no-aug
                parser.add_argument(*names, action="store_const", const=True, **kwargs)
            elif hint is bool:  # --amp / --no-amp, so a flag can undo a recipe's value
                parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kwargs)
            elif typing.get_origin(hint) is tuple and typing.get_args(hint)[-1] is Ellipsis:
                parser.add_argument(*names, nargs="+", choices=f.metadata.get("choices"), metavar=f.name.upper()
                                    if not f.metadata.get("choices") else None, **kwargs)  # fmt: skip
            elif typing.get_origin(hint) is tuple:
                parser.add_argument(*names, nargs=2, metavar=("MIN", "MAX"), **kwargs)
            elif typing.get_origin(hint) is dict:
                parser.add_argument(*names, type=yaml_mapping, metavar="YAML", **kwargs)
            elif f.metadata.get("choices"):
                parser.add_argument(*names, choices=list(f.metadata["choices"]), **kwargs)
            else:
                parser.add_argument(*names, metavar=f.name.upper(), **kwargs)

    @classmethod
    def given(cls, args: argparse.Namespace) -> dict[str, Any]:
        """The options a parsed command line gives (flags not None)."""
        return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None)
                is not None}  # fmt: skip


def _check_field(f: dataclasses.Field, value: Any) -> None:
    choices = f.metadata.get("choices")
    if choices and value is not None and value not in choices:
        raise ConfigError(f"{f.name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    low, high, low_open = f.metadata.get("low"), f.metadata.get("high"), f.metadata.get("low_open", False)
    if value is None or isinstance(value, (bool, str, dict)) or (low is None and high is None):
        return
    if not math.isfinite(value):
        raise ConfigError(f"{f.name} must be a finite number, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        lo = "" if low is None else f"{'>' if low_open else '>='} {_number_text(low)}"
        hi = "" if high is None else f"<= {_number_text(high)}"
        raise ConfigError(f"{f.name} must be {' and '.join(p for p in (lo, hi) if p)}, got {_number_text(value)}")


def _number_text(x: float) -> str:
    """``1000000``, ``0.999``, ``1e-05``: whole numbers written out, others as ``:g``."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """``value`` as the field's type: numbers from YAML strings ('1e-3'), tuples from lists; else a ConfigError."""
    args = typing.get_args(hint)
    if type(None) in args:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint)
    if origin is tuple and typing.get_args(hint)[-1] is Ellipsis:  # tuple[X, ...]: any number of X
        items = [value] if isinstance(value, (str, int, float)) else value
        if not isinstance(items, (list, tuple)) or not items:
            raise ConfigError(f"{name} must be one or more values, got {value!r}")
        return tuple(_coerce(v, typing.get_args(hint)[0], name) for v in items)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(typing.get_args(hint)):
            raise ConfigError(f"{name} must be {len(typing.get_args(hint))} numbers, got {value!r}")
        return tuple(_coerce(v, t, name) for v, t in zip(value, typing.get_args(hint), strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a mapping such as {{stem_stride: 1}}, got {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if hint is int:
        return _number(value, int, name, "an integer")
    if hint is float:
        return _number(value, float, name, "a number")
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
        return value
    return value


def _number(value: Any, kind: type, name: str, what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{name} must be {what}, got {value!r}")
    if kind is int and isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(f"{name} must be {what}, got {value!r}")
        return int(value)
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {value!r}") from None
