"""The four-stage macro-architecture that ConvNeXt, HorNet and QuadraNet share, around :class:`MixerBlock`.

stem: Conv 4×4 stride 4 + LayerNorm → stage i (i > 0 starts with LayerNorm + Conv 2×2 stride 2) with
``C · 2**i`` channels → global average pool → LayerNorm → Linear. Weights trunc-normal(0.02), biases 0.
:class:`starquad.models.quadranet.QuadraNet` and :class:`starquad.models.hornet.HorNet` are this network
with their block type; each has its own ``checkpoint_filter_fn`` for its authors' key layout.
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import LayerNorm2d, trunc_normal_
from timm.models import checkpoint_seq
from timm.models._features import feature_take_indices

from starquad.errors import ConfigError
from starquad.models.blocks import MixerBlock
from starquad.models.surface import ModelSurface, check_image_batch
from starquad.ops import QuadraticConv2d, QuadraticLinear
from starquad.ops.fold import fold_norm_into_

__all__ = ["MixerNet", "MixerStage", "convert_convnext_layout"]


class MixerStage(nn.Module):
    """Downsampler (LayerNorm + 2×2 stride-2 conv; identity for the first stage) followed by blocks."""

    def __init__(self, in_chs: int, dim: int, depth: int, downsample: bool, drop_paths: Sequence[float],
                 blocks: Sequence[nn.Module] | None = None, **block_kwargs: Any):  # fmt: skip
        super().__init__()
        self.downsample = (
            nn.Sequential(LayerNorm2d(in_chs, eps=1e-6), nn.Conv2d(in_chs, dim, 2, stride=2))
            if downsample
            else nn.Identity()
        )
        if blocks is None:  # ``depth`` blocks of one type; or the given, possibly different, blocks (NAS)
            blocks = [MixerBlock(dim, drop_path=drop_paths[j], **block_kwargs) for j in range(depth)]
        self.blocks = nn.Sequential(*blocks)
        self.grad_checkpointing = False

    @torch.jit.unused
    def reparameterize(self) -> None:
        """The inference form (timm's hook): the downsampler's LayerNorm affine folded into its unpadded conv."""
        if isinstance(self.downsample, nn.Sequential):
            fold_norm_into_(self.downsample[0], self.downsample[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)  # one checkpoint per block: saves memory, costs a recompute
        return self.blocks(x)


class MixerNet(ModelSurface, nn.Module):
    """Four stages of :class:`MixerBlock` of one type.

    Args:
        block: block type (``'quadra'``, ``'hor'``, ``'conv'``, ``'skip'``, ``'swin'``).
        base_dim: width ``C`` of the first stage; stage i has ``C · 2**i``.
        depths: blocks per stage.
        stage_block_kwargs: per-stage extra block arguments (HorNet: ``[{'order': 2}, …, {'order': 5}]``).
        mlp_ratio, ls_init, lean, kernel_size, memory_efficient, channel_mixer: passed to every block
            (``channel_mixer='quadratic'``: quadratic neurons in the MLP's 1×1 layers, QuadraNet Table V).
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth, linear in ``[0, drop_path_rate]`` over all blocks.
        head_init_scale: scale of the classifier's initial weights (ConvNeXt lineage).
        stem_stride: stride (and kernel) of the patchify stem; 4 as in ConvNeXt, 2 for 28–32² inputs.
        block_factory: ``(stage, index, dim, drop_path) -> block``; builds every block instead of ``block``
            (architecture search: a different op per layer). ``depths`` still gives the count per stage.
        num_classes, in_chans, global_pool: as in timm.
    """

    def __init__(
        self,
        block: str = "quadra",
        base_dim: int = 64,
        depths: Sequence[int] = (2, 3, 18, 2),
        stage_block_kwargs: Sequence[dict[str, Any]] | None = None,
        mlp_ratio: float = 4.0,
        kernel_size: int = 7,
        ls_init: float = 1e-6,
        lean: bool = True,
        memory_efficient: bool = True,
        channel_mixer: str = "linear",
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        head_init_scale: float = 1.0,
        stem_stride: int = 4,
        block_factory: Callable[[int, int, int, float], nn.Module] | None = None,
        num_classes: int = 1000,
        in_chans: int = 3,
        global_pool: str = "avg",
    ):
        super().__init__()
        if stage_block_kwargs is not None and len(stage_block_kwargs) != len(depths):
            raise ConfigError(f"stage_block_kwargs has {len(stage_block_kwargs)} entries for {len(depths)} stages")
        self.num_classes, self.in_chans, self.drop_rate = num_classes, in_chans, drop_rate
        self.grad_checkpointing = False
        self.stem = nn.Sequential(nn.Conv2d(in_chans, base_dim, stem_stride, stride=stem_stride),
                                  LayerNorm2d(base_dim, eps=1e-6))  # fmt: skip
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).split(list(depths))
        common = dict(kind=block, mlp_ratio=mlp_ratio, ls_init=ls_init, lean=lean, kernel_size=kernel_size,
                      channel_mixer=channel_mixer)  # fmt: skip
        if block == "quadra":
            common["memory_efficient"] = memory_efficient
        stages, self.feature_info, prev = [], [], base_dim
        for i, depth in enumerate(depths):
            dim = base_dim * 2**i
            extra = stage_block_kwargs[i] if stage_block_kwargs is not None else {}
            blocks = None
            if block_factory is not None:
                blocks = [block_factory(i, j, dim, float(p)) for j, p in enumerate(dpr[i].tolist())]
            stages.append(MixerStage(prev, dim, depth, i > 0, dpr[i].tolist(), blocks=blocks, **common, **extra))
            self.feature_info.append(dict(num_chs=dim, reduction=stem_stride * 2**i, module=f"stages.{i}"))
            prev = dim
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = prev
        # pool → LayerNorm over channels → flatten (timm's NormMlpClassifierHead order): the same LayerNorm2d then
        # also normalises an unpooled map when global_pool='' (4-D features, as timm's contract wants)
        self.global_pool = self._new_pool(global_pool, flatten=False)
        self.norm = LayerNorm2d(prev, eps=1e-6)
        self.flatten = nn.Flatten(1) if global_pool else nn.Identity()
        self.head = self._new_head(num_classes)
        self.apply(self._init_weights)
        if isinstance(self.head, nn.Linear):
            self.head.weight.data.mul_(head_init_scale)
            self.head.bias.data.mul_(head_init_scale)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear, QuadraticConv2d, QuadraticLinear)):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return set()  # timm's optimizer factory already exempts 1-D parameters (norms, biases, γ)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        fine = [(r"^stages\.(\d+)\.downsample", (0,)), (r"^stages\.(\d+)\.blocks\.(\d+)", None), (r"^norm", (99999,))]
        return dict(stem=r"^stem", blocks=r"^stages\.(\d+)" if coarse else fine)

    @torch.jit.unused
    def _forward_stage(self, stage: MixerStage, x: torch.Tensor) -> torch.Tensor:
        return stage(x)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            self.global_pool = self._new_pool(global_pool, flatten=False)
            self.flatten = nn.Flatten(1) if global_pool else nn.Identity()
        self.head = self._new_head(num_classes)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable
        for stage in self.stages:
            stage.grad_checkpointing = enable

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:  # fmt: skip
        take, max_index = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[: max_index + 1]
        if prune_head:
            self.reset_classifier(0, "")
        return take

    @torch.jit.unused
    def reparameterize(self) -> None:
        """The inference form of the head (:func:`starquad.deploy.prepare_for_inference` calls this; the blocks and
        stages have their own): the LayerNorm after pooling folded into the classifier. Logits are unchanged up to
        float rounding; ``forward_head(pre_logits=True)`` then returns the features before the norm's affine."""
        if isinstance(self.head, nn.Linear):
            fold_norm_into_(self.norm, self.head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.jit.is_tracing():
            check_image_batch(x, self.in_chans, type(self).__name__)
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.flatten(self.norm(self.global_pool(x)))
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def convert_convnext_layout(state_dict: dict[str, torch.Tensor], mixer_name: str) -> dict[str, torch.Tensor]:
    """Map the ConvNeXt-lineage key layout (HorNet's and QuadraNet's released code) onto :class:`MixerNet`.

    ``downsample_layers.0.*`` → ``stem.*``; ``downsample_layers.i.*`` → ``stages.i.downsample.*``;
    ``stages.i.j.{norm1, <mixer_name>, gamma1}`` → ``stages.i.blocks.j.{norm1, mixer, gamma1}``;
    ``stages.i.j.{norm2, pwconv1, pwconv2, gamma2}`` → ``stages.i.blocks.j.mlp.{norm, fc1, fc2, gamma}``;
    ``norm.*`` and ``head.*`` are unchanged. Keys already in our layout pass through.
    """
    mlp_names = {"norm2": "mlp.norm", "pwconv1": "mlp.fc1", "pwconv2": "mlp.fc2", "gamma2": "mlp.gamma"}
    out = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] == "downsample_layers":
            i, rest = int(parts[1]), parts[2:]
            key = ".".join(["stem", *rest] if i == 0 else ["stages", str(i), "downsample", *rest])
        elif parts[0] == "stages" and len(parts) > 3 and parts[2].isdigit():
            i, j, name, rest = parts[1], parts[2], parts[3], parts[4:]
            name = "mixer" if name == mixer_name else mlp_names.get(name, name)
            key = ".".join(["stages", i, "blocks", j, name, *rest])
        out[key] = value
    return out
