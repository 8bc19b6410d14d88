"""Search spaces as data: a four-stage skeleton, and per searchable layer a list of candidate ops.

Every space shares one macro-architecture, :class:`~starquad.models.mixernet.MixerNet`'s (patchify stem +
LayerNorm, LayerNorm + 2×2 stride-2 downsampler before stages 1–3, pool → LayerNorm → Linear head), so
spaces differ only in their candidate blocks and a comparison between spaces isolates the ops. Inside a
stage every block keeps the shape, so *identity* (skip) is a candidate at every layer and depth is searched.

=================  =========================================================================================
``quadranet``      the QuadraNet paper's: QuadraBlock with kernel {3, 5, 7} × MLP expansion {2, 4}, + skip
``mbconv``         ProxylessNAS's own: inverted-residual MBConv (timm's ``InvertedResidual``, ReLU6, BN)
                   with kernel {3, 5, 7} × expansion {3, 6}, + skip — the baseline the paper compares with
``interaction``    ours: the spatial mixer's interaction order — linear depthwise conv, star
                   (``act(conv_a x) ⊙ conv_b x``), quadratic (``conv_a x ⊙ conv_b x + conv_c x``) —
                   × kernel {3, 5, 7} × MLP expansion {2, 4}, + skip
=================  =========================================================================================

An architecture is a JSON-able list of candidate indices, one per searchable layer, in stage order;
:func:`build` turns it into a normal starquad model (the full timm surface: train, bench, export work on it).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starquad.errors import ConfigError

if TYPE_CHECKING:  # torch is imported where a module is built: the CLI reads SPACES without it
    import torch.nn as nn

__all__ = ["SPACES", "Candidate", "LayerOp", "SearchSpace", "build", "get_space", "layer_ops", "load_arch",
           "random_arch", "save_arch", "skeleton"]  # fmt: skip


@dataclass(frozen=True)
class Candidate:
    """One op a searchable layer may take.

    Attributes:
        kind: ``'skip'``, ``'mbconv'``, or a :class:`~starquad.models.blocks.MixerBlock` mixer type
            (``'quadra'``, ``'star'``, ``'conv'``).
        kernel: spatial kernel (None for skip).
        expansion: MLP / inverted-residual expansion (None for skip).
    """

    kind: str
    kernel: int | None = None
    expansion: float | None = None

    @property
    def name(self) -> str:
        """A stable key, e.g. ``quadra_k5_e4``, ``mbconv_k3_e6``, ``skip``."""
        if self.kind == "skip":
            return "skip"
        return f"{self.kind}_k{self.kernel}_e{self.expansion:g}"

    def build(self, dim: int, drop_path: float = 0.0) -> nn.Module:
        """The op as a module on ``(N, dim, H, W)``, shape-preserving."""
        import torch.nn as nn

        if self.kind == "skip":
            return nn.Identity()
        if self.kind == "mbconv":
            from timm.models._efficientnet_blocks import InvertedResidual

            return InvertedResidual(dim, dim, dw_kernel_size=self.kernel, exp_ratio=self.expansion,
                                    act_layer=nn.ReLU6, drop_path_rate=drop_path)  # fmt: skip
        from starquad.models.blocks import MixerBlock

        return MixerBlock(dim, kind=self.kind, kernel_size=self.kernel, mlp_ratio=self.expansion, drop_path=drop_path)


def _grid(kinds: Sequence[str], kernels: Sequence[int], expansions: Sequence[float]) -> tuple[Candidate, ...]:
    ops = [Candidate(k, kernel, e) for k, kernel, e in itertools.product(kinds, kernels, expansions)]
    return (*ops, Candidate("skip"))


@dataclass(frozen=True)
class SearchSpace:
    """A four-stage network with ``layers[i]`` searchable layers in stage ``i``, each one of ``candidates``.

    Attributes:
        name: the space's name.
        candidates: the ops every searchable layer chooses from.
        widths: channels per stage.
        layers: searchable layers per stage.
        stem_stride: stride of the patchify stem (2 for 28–32² inputs, 4 at 224²).
    """

    name: str
    candidates: tuple[Candidate, ...]
    widths: tuple[int, ...] = (24, 48, 96, 192)
    layers: tuple[int, ...] = (2, 2, 4, 2)
    stem_stride: int = 2
    description: str = field(default="", compare=False)

    def __post_init__(self):
        if len(self.widths) != len(self.layers) or not self.widths:
            raise ConfigError(f"space {self.name}: {len(self.widths)} widths for {len(self.layers)} stages")
        if any(w < 1 for w in self.widths) or any(n < 1 for n in self.layers):
            raise ConfigError(f"space {self.name}: widths and layers per stage must be >= 1")
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise ConfigError(f"space {self.name}: candidates repeat: {names}")

    def record(self) -> dict[str, Any]:
        """The skeleton as JSON-able data (what :func:`from_record` reads back)."""
        return {"name": self.name, "widths": list(self.widths), "layers": list(self.layers),
                "stem_stride": self.stem_stride}  # fmt: skip

    @property
    def num_layers(self) -> int:
        return sum(self.layers)

    @property
    def size(self) -> int:
        """The number of architectures in the space."""
        return len(self.candidates) ** self.num_layers

    def check(self, arch: Sequence[int]) -> list[int]:
        """``arch`` as a list of ints, or a ConfigError naming the first bad entry."""
        if isinstance(arch, (str, bytes)) or not isinstance(arch, Sequence):
            raise ConfigError(f"an architecture of space '{self.name}' is a list of {self.num_layers} candidate "
                              f"indices, got {type(arch).__name__}")  # fmt: skip
        if len(arch) != self.num_layers:
            raise ConfigError(f"space '{self.name}' has {self.num_layers} searchable layers {list(self.layers)}, "
                              f"the architecture gives {len(arch)}")  # fmt: skip
        n = len(self.candidates)
        for i, choice in enumerate(arch):
            if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < n:
                raise ConfigError(f"layer {i} of the architecture: {choice!r} is not a candidate index 0..{n - 1} "
                                  f"of space '{self.name}' ({', '.join(c.name for c in self.candidates)})")  # fmt: skip
        return list(arch)


SPACES: dict[str, SearchSpace] = {
    s.name: s
    for s in (
        SearchSpace("quadranet", _grid(["quadra"], [3, 5, 7], [2, 4]),
                    description="QuadraBlock kernel {3,5,7} × MLP expansion {2,4} + skip (the QuadraNet paper's)"),
        SearchSpace("mbconv", _grid(["mbconv"], [3, 5, 7], [3, 6]),
                    description="MBConv kernel {3,5,7} × expansion {3,6} + skip (ProxylessNAS's)"),
        SearchSpace("interaction", _grid(["conv", "star", "quadra"], [3, 5, 7], [2, 4]),
                    description="mixer order {linear, star, quadratic} × kernel {3,5,7} × expansion {2,4} + skip"),
    )
}  # fmt: skip


def get_space(name: str, **overrides: Any) -> SearchSpace:
    """A registered space by name, with fields replaced (``widths``, ``layers``, ``stem_stride``)."""
    if name not in SPACES:
        raise ConfigError(f"unknown search space '{name}'; available: {', '.join(SPACES)}")
    try:
        return dataclasses.replace(SPACES[name], **overrides)
    except TypeError as e:
        raise ConfigError(f"search space '{name}': {e}") from None


def from_record(name: str, record: dict[str, Any]) -> SearchSpace:
    """Space ``name`` with the skeleton of a stored record (``widths``, ``layers``, ``stem_stride``)."""
    return get_space(name, widths=tuple(record["widths"]), layers=tuple(record["layers"]),
                     stem_stride=record["stem_stride"])  # fmt: skip


def random_arch(space: SearchSpace, rng: random.Random) -> list[int]:
    """A uniformly random architecture."""
    return [rng.randrange(len(space.candidates)) for _ in range(space.num_layers)]


@dataclass(frozen=True)
class LayerOp:
    """What one searchable layer computes: its candidate's name and its input shape ``(C, H, W)`` — the key
    under which a latency table times it."""

    layer: int
    stage: int
    op: str
    input_shape: tuple[int, int, int]


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def layer_ops(space: SearchSpace, arch: Sequence[int], img_size: int) -> list[LayerOp]:
    """The op and input shape of every searchable layer of ``arch`` at ``img_size``² input."""
    arch = space.check(arch)
    if img_size < space.stem_stride * 2 ** (len(space.widths) - 1):
        raise ConfigError(f"img_size {img_size} is too small for space '{space.name}': the last stage would be empty")
    size = _conv_out(img_size, space.stem_stride, space.stem_stride)
    ops, layer = [], 0
    for stage, (width, n) in enumerate(zip(space.widths, space.layers, strict=True)):
        if stage > 0:
            size = _conv_out(size, 2, 2)
        for _ in range(n):
            ops.append(LayerOp(layer, stage, space.candidates[arch[layer]].name, (width, size, size)))
            layer += 1
    return ops


def skeleton(space: SearchSpace, block: Callable[[int, int, float], nn.Module], variant: str,
             **kwargs: Any) -> nn.Module:  # fmt: skip
    """The space's :class:`~starquad.models.mixernet.MixerNet` whose searchable layer ``layer`` (stage order)
    is ``block(layer, dim, drop_path)``; ``kwargs`` as MixerNet's."""
    from starquad.models.mixernet import MixerNet
    from starquad.models.registry import build_staged_model, imagenet_cfg

    widths = space.widths
    if any(w != widths[0] * 2**i for i, w in enumerate(widths)):
        raise ConfigError(f"space '{space.name}': widths must double per stage (the MixerNet skeleton), got {widths}")
    offsets = list(itertools.accumulate(space.layers, initial=0))

    def factory(stage: int, index: int, dim: int, drop_path: float) -> nn.Module:
        return block(offsets[stage] + index, dim, drop_path)

    last = 224 // (space.stem_stride * 2 ** (len(widths) - 1))  # the last stage's side at 224²
    cfg = imagenet_cfg(first_conv="stem.0", paper_ids="arXiv:2311.17956", pool_size=(last, last))
    return build_staged_model(MixerNet, variant, cfg, base_dim=widths[0], depths=space.layers,
                              stem_stride=space.stem_stride, block_factory=factory, **kwargs)  # fmt: skip


def build(space: SearchSpace, arch: Sequence[int], **kwargs: Any) -> nn.Module:
    """The model of ``arch`` in ``space``: a :class:`~starquad.models.mixernet.MixerNet` whose searchable layers
    are the chosen candidates; ``kwargs`` as MixerNet's (``num_classes``, ``in_chans``, ``drop_path_rate``,
    ``features_only``, …). Its ``pretrained_cfg`` records the space and the architecture."""
    arch = space.check(arch)
    model = skeleton(space, lambda layer, dim, dp: space.candidates[arch[layer]].build(dim, dp), f"nas_{space.name}",
                     **kwargs)  # fmt: skip
    model.pretrained_cfg = model.default_cfg = {**model.pretrained_cfg, "nas_space": space.name, "nas_arch": arch}
    return model


def save_arch(path: str | os.PathLike, space: SearchSpace, arch: Sequence[int]) -> Path:
    """Write ``{"space": …, "widths": …, "layers": …, "stem_stride": …, "arch": [...], "ops": [...]}`` (atomic)."""
    from starquad.io import atomic_write

    arch = space.check(arch)
    skeleton_record = space.record()
    record = {"space": skeleton_record.pop("name"), **skeleton_record, "arch": arch,
              "ops": [space.candidates[i].name for i in arch]}  # fmt: skip
    return atomic_write(path, json.dumps(record, indent=2) + "\n")


def load_arch(path: str | os.PathLike) -> tuple[SearchSpace, list[int]]:
    """The space and architecture of a file written by :func:`save_arch` (checked; errors name the file)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        space = from_record(record["space"], record)
        arch = space.check(record["arch"])
    except FileNotFoundError:
        raise ConfigError(f"{path}: architecture file not found") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a starquad architecture file ({type(e).__name__}: {e})") from None
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    names = record.get("ops")
    if names is not None and names != [space.candidates[i].name for i in arch]:
        raise ConfigError(f"{path}: its op names do not match its indices in space '{space.name}' (edited by hand?)")
    return space, arch
