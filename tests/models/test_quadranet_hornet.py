"""QuadraNet and HorNet: the authors' checkpoint layouts, sizes against the SPEC, memory, timm registry."""

import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

import starquad
from starquad.bench.flops import count_flops
from starquad.bench.memory import saved_activations_of
from starquad.models.blocks import MixerBlock
from starquad.models.checkpoint import CheckpointError

SMALL = dict(base_dim=16, depths=(1, 1, 2, 1), num_classes=7)


# --- a reference network in the authors' key layout, written from the SPEC (not their code) ---------------


class _ChannelsFirstLN(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        return self.weight[:, None, None] * (x - mean) / torch.sqrt(var + 1e-6) + self.bias[:, None, None]


class _QuadraConv(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = (nn.Conv2d(dim, dim, 7, padding=3, groups=dim) for _ in range(3))

    def forward(self, x):
        return self.conv1(x) * self.conv2(x) + self.conv3(x)


class _GnConv(nn.Module):
    def __init__(self, dim, order):
        super().__init__()
        self.dims = [dim // 2**i for i in range(order)][::-1]
        self.proj_in = nn.Conv2d(dim, 2 * dim, 1)
        self.dwconv = nn.Conv2d(sum(self.dims), sum(self.dims), 7, padding=3, groups=sum(self.dims))
        self.pws = nn.ModuleList(nn.Conv2d(self.dims[i], self.dims[i + 1], 1) for i in range(order - 1))
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        p0, q = torch.split(self.proj_in(x), (self.dims[0], sum(self.dims)), dim=1)
        gates = torch.split(self.dwconv(q) / 3, self.dims, dim=1)
        x = p0 * gates[0]
        for pw, gate in zip(self.pws, gates[1:], strict=True):
            x = pw(x) * gate
        return self.proj_out(x)


class _Block(nn.Module):
    def __init__(self, dim, mixer_name, mixer):
        super().__init__()
        self.mixer_name = mixer_name
        self.norm1 = _ChannelsFirstLN(dim)
        setattr(self, mixer_name, mixer)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1, self.pwconv2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.gamma1, self.gamma2 = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x = x + self.gamma1.view(-1, 1, 1) * getattr(self, self.mixer_name)(self.norm1(x))
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm2(x.permute(0, 2, 3, 1)))))
        return x + (self.gamma2 * y).permute(0, 3, 1, 2)


class _AuthorsNet(nn.Module):
    def __init__(self, mixer_name, make_mixer, base_dim, depths, num_classes):
        super().__init__()
        dims = [base_dim * 2**i for i in range(4)]
        self.downsample_layers = nn.ModuleList([nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), _ChannelsFirstLN(dims[0]))])
        for i in range(3):
            down = nn.Sequential(_ChannelsFirstLN(dims[i]), nn.Conv2d(dims[i], dims[i + 1], 2, 2))
            self.downsample_layers.append(down)
        self.stages = nn.ModuleList(
            nn.Sequential(*(_Block(dims[i], mixer_name, make_mixer(dims[i], i)) for _ in range(d)))
            for i, d in enumerate(depths)
        )
        self.norm, self.head = nn.LayerNorm(dims[-1], eps=1e-6), nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
        return self.head(self.norm(x.mean((-2, -1))))


def _randomised(model, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.5 if p.ndim == 1 else 0.1))
    return model.eval()


AUTHORS = {
    "quadranet_t25": ("QuadraConv", lambda dim, i: _QuadraConv(dim)),
    "hornet_t": ("gnconv", lambda dim, i: _GnConv(dim, order=i + 2)),
}


@pytest.mark.parametrize("name", sorted(AUTHORS))
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_authors_checkpoint_loads_and_gives_the_same_outputs(tmp_path, name, suffix):
    reference = _randomised(_AuthorsNet(*AUTHORS[name], **SMALL))
    path = tmp_path / f"authors{suffix}"
    state = reference.state_dict()
    if suffix == ".pth":
        torch.save({"model": state, "epoch": 3}, path)  # the ConvNeXt/HorNet training-checkpoint wrapper
    else:
        save_file(state, str(path))
    model = starquad.create_model(name, **SMALL).eval()
    starquad.load_checkpoint(model, path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)


def test_incomplete_quadraconv_is_refused(tmp_path):
    state = _randomised(_AuthorsNet(*AUTHORS["quadranet_t25"], **SMALL)).state_dict()
    del state["stages.0.0.QuadraConv.conv3.weight"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"stages\.0\.blocks\.0\.mixer\.weight: .* QuadraConv conv1, conv2 but"):
        starquad.load_checkpoint(starquad.create_model("quadranet_t25", **SMALL), tmp_path / "bad.pth")


def test_memory_efficient_quadrablock_equals_plain():
    x0 = torch.randn(2, 32, 14, 14)
    results = []
    for me in (True, False):
        torch.manual_seed(0)
        block = MixerBlock(32, "quadra", ls_init=0.5, memory_efficient=me)
        x = x0.clone().requires_grad_()
        y = block(x)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        results.append([y.detach(), x.grad] + [p.grad for p in block.parameters()])
    for a, b in zip(*results, strict=True):  # float32 rounding of sums in different orders (the two backwards)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * max(1.0, b.abs().max().item()))


def test_quadranet_saves_at_most_70_percent_of_hornet():
    x = torch.randn(1, 3, 64, 64)
    torch.manual_seed(0)
    quadra = saved_activations_of(starquad.create_model("quadranet_t25"), x).bytes
    hor = saved_activations_of(starquad.create_model("hornet_t"), x).bytes
    assert quadra <= 0.70 * hor


def test_registered_in_timm_without_downloads():
    assert timm.is_model("quadranet_t25") and timm.is_model("hornet_t")
    assert isinstance(timm.create_model("quadranet_xxs36", num_classes=3), starquad.models.quadranet.QuadraNet)
    assert timm.models.get_pretrained_cfg("hornet_s").paper_ids == "arXiv:2207.14284"
    with pytest.raises(starquad.ConfigError, match="never downloads"):
        timm.create_model("hornet_t", pretrained=True)


# SPEC §4 figures as printed: params (M), MACs (G, conv + linear, 224²). A figure agrees when within 1% or
# within the rounding of its last printed digit (the SPEC gives "22M" and "0.32G").
SPEC_SIZES = {
    "quadranet_xxs36": ("1.85", "0.32"), "quadranet_xs36": ("6.39", "1.12"), "quadranet_t36": ("23.6", "4.13"),
    "quadranet_s36": ("51.6", "9.03"), "quadranet_b36": ("90.5", "15.81"), "quadranet_t25": ("16.3", "2.90"),
    "quadranet_s25": ("35.5", "6.33"), "quadranet_b25": ("62.1", "11.09"), "hornet_t": ("22", "4.0"),
}  # fmt: skip


def _agrees(measured: float, printed: str) -> bool:
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return abs(measured - float(printed)) <= max(0.01 * float(printed), 0.5 * 10**-decimals)


@pytest.mark.parametrize("name", sorted(SPEC_SIZES))
def test_params_and_macs_match_the_spec(name):
    counts = count_flops(starquad.create_model(name), (3, 224, 224))
    params, macs = SPEC_SIZES[name]
    assert _agrees(counts.params / 1e6, params), counts.params
    assert _agrees(counts.macs / 1e9, macs), counts.macs


def test_quadratic_channel_mixer_is_the_low_rank_quadratic_neuron():
    from starquad.models.blocks import QuadraticMlp

    torch.manual_seed(0)
    mlp = QuadraticMlp(8, mlp_ratio=2, ls_init=0.5)
    x = torch.randn(2, 8, 5, 5)
    rows = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (8,), mlp.norm.weight, mlp.norm.bias, 1e-6)

    def quad(layer, v):  # (W_a v + b_a) ⊙ (W_b v + b_b) + W_c v + b_c, written out
        wa, wb, wc = layer.weight.chunk(3)
        ba, bb, bc = layer.bias.chunk(3)
        return (v @ wa.T + ba) * (v @ wb.T + bb) + v @ wc.T + bc

    ref = (quad(mlp.fc2, torch.nn.functional.gelu(quad(mlp.fc1, rows))) * 0.5).permute(0, 3, 1, 2)
    torch.testing.assert_close(mlp(x), ref, rtol=1e-5, atol=1e-6)
    # 3× the MLP's weights; the spatial mixer is unchanged
    lin, qua = MixerBlock(8, "conv", mlp_ratio=2), MixerBlock(8, "conv", mlp_ratio=2, channel_mixer="quadratic")
    n_mlp = lambda b: sum(p.numel() for p in b.mlp.parameters() if p.ndim == 2)  # noqa: E731
    assert n_mlp(qua) == 3 * n_mlp(lin)
    with pytest.raises(starquad.ConfigError, match="unknown channel_mixer 'cubic'"):
        MixerBlock(8, "conv", channel_mixer="cubic")
