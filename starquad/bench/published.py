"""Published ImageNet-1k top-1 accuracies (%) of timm peers, for accuracy-versus-latency tables and plots.

starquad's own models carry theirs in their cfg (``paper_metrics['top1']``); timm's pretrained cfgs do not
carry accuracies, so the peers of the StarNet paper's Table 6 are listed here with the paper each figure
comes from. Nothing here is measured by starquad.
"""

from __future__ import annotations

__all__ = ["PAPER_CPU_MS", "PUBLISHED_TOP1", "paper_cpu_ms", "published_top1"]

# name -> (top-1 %, source)
PUBLISHED_TOP1: dict[str, tuple[float, str]] = {
    "mobileone_s0": (71.4, "MobileOne (CVPR 2023)"),
    "mobileone_s1": (75.9, "MobileOne (CVPR 2023)"),
    "mobileone_s2": (77.4, "MobileOne (CVPR 2023)"),
    "mobilenetv2_100": (72.0, "MobileNetV2 (CVPR 2018)"),
    "mobilenetv2_140": (74.7, "MobileNetV2 (CVPR 2018)"),
    "mobilenetv3_large_100": (75.2, "MobileNetV3 (ICCV 2019)"),
    "ghostnet_100": (73.9, "GhostNet (CVPR 2020)"),
    "efficientnet_b0": (77.1, "EfficientNet (ICML 2019)"),
    "fasternet_t0": (71.9, "FasterNet (CVPR 2023)"),
    "fasternet_t1": (76.2, "FasterNet (CVPR 2023)"),
    "starnet_s050": (55.7, "Rewrite the Stars (CVPR 2024)"),
    "starnet_s100": (64.3, "Rewrite the Stars (CVPR 2024)"),
    "starnet_s150": (68.0, "Rewrite the Stars (CVPR 2024)"),
    "starnet_s1": (73.5, "Rewrite the Stars (CVPR 2024)"),
    "starnet_s2": (74.8, "Rewrite the Stars (CVPR 2024)"),
    "starnet_s3": (77.3, "Rewrite the Stars (CVPR 2024)"),
    "starnet_s4": (78.4, "Rewrite the Stars (CVPR 2024)"),
}


# The StarNet paper's CPU latency of its peers (ms; ONNX Runtime, batch 1, Xeon E5-2680v4; SPEC §3).
PAPER_CPU_MS: dict[str, float] = {"mobileone_s0": 2.2, "mobilenetv2_100": 3.2, "efficientnet_b0": 8.8,
                                  "mobileone_s2": 8.9, "fasternet_t1": 9.7}  # fmt: skip


def _paper_figure(name: str, key: str, table: dict[str, float]) -> float | None:
    """``paper_metrics[key]`` of a starquad model's cfg, else ``table`` (``timm:`` prefix allowed)."""
    from starquad.models import get_model_cfg

    value = get_model_cfg(name).get("paper_metrics", {}).get(key)
    return value if value is not None else table.get(name.removeprefix("timm:"))


def paper_cpu_ms(name: str) -> float | None:
    """The StarNet paper's CPU latency of ``name``: starquad's cfg figure, else the peers' table above."""
    return _paper_figure(name, "cpu_ms", PAPER_CPU_MS)


def published_top1(name: str) -> float | None:
    """ImageNet top-1 of ``name``: starquad's cfg figure, else the table above."""
    return _paper_figure(name, "top1", {k: v[0] for k, v in PUBLISHED_TOP1.items()})
