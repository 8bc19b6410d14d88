"""The options of ``starquad export``, declared once (:mod:`starquad.options`). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from starquad.errors import ConfigError
from starquad.options import Options, option

__all__ = ["ExportConfig"]


@dataclass
class ExportConfig(Options):
    """What to export, where, how it is checked, and (``int8``) how it is quantized."""

    HELP_COMMAND: ClassVar[str] = "starquad export --help"

    model: str = option("", "model name, or a search's arch.json", positional=True, required=True)
    output: str = option("", "output file: .onnx, .pt2, or .xml (int8 for openvino)", flags=("-o",), required=True)
    format: str | None = option(None, "onnx or pt2 (default: from the output's suffix, else onnx); a pt2 package is "
                                "compiled for batch 1 at the input size", choices=("onnx", "pt2"))  # fmt: skip
    checkpoint: str | None = option(None, "weights to load first (safetensors or weights-only torch file)")
    num_classes: int | None = option(None, "classifier size (default: the model's)", low=0, high=1_000_000)
    in_chans: int | None = option(None, "input channels (default: the model's)", low=1, high=4096)
    img_size: int | None = option(None, "input side (default: the model's cfg input size)", low=16, high=4096)
    model_kwargs: dict[str, Any] = option(help="model options, as in training, e.g. '{stem_stride: 1, stem_chs: 16}'",  # noqa: RUF009
                                          default_factory=dict)  # fmt: skip
    dynamic_batch: bool = option(False, "a symbolic batch dimension (ONNX)")
    fold: bool = option(True, "export the inference form (re-parameterised, folded; --no-fold: the model as built)")
    atol: float = option(1e-4, "largest allowed difference from PyTorch", low=0, low_open=True, high=1e3)
    int8: bool = option(False, "post-training static quantization (starquad.deploy.int8): per-channel int8 weights, "
                        "activations calibrated on --calib's training images; each star/quadratic product's error "
                        "is measured and the products that cost accuracy stay in float. Writes OUTPUT.onnx (or "
                        "OUTPUT.xml with --runtime openvino) and OUTPUT.json with the choice and the figures; fails, "
                        "writing nothing, when the test split's top-1 drops by more than --max-drop")  # fmt: skip
    runtime: str = option("onnxruntime", "int8 runtime: onnxruntime (QDQ through onnxruntime.quantization) or "
                          "openvino (NNCF)", choices=("onnxruntime", "openvino"))  # fmt: skip
    calib: str | None = option(None, "int8 calibration, selection and test data (starquad data list); its images "
                               "must have the model's channels and size")  # fmt: skip
    calib_n: int = option(512, "int8 calibration images", low=1, high=1_000_000)
    calib_method: str = option("minmax", "onnxruntime's calibration method", choices=("minmax", "percentile",
                                                                                      "entropy"))  # fmt: skip
    calib_resize: bool = option(False, "resize the calibration images to the model's size")
    max_drop: float = option(1.0, "largest int8 top-1 drop in points on the test split", low=0, high=100)
    eval_n: int | None = option(None, "test images for the int8 check (default: the whole split)", low=1)
    data_dir: str | None = option(None, "where --calib's files are (default: the usual places)")

    @property
    def output_format(self) -> str:
        return self.format or ("pt2" if self.output.endswith(".pt2") else "onnx")

    def validate(self) -> None:
        super().validate()
        if self.int8 and (self.output_format == "pt2" or self.calib is None):
            raise ConfigError("--int8 writes ONNX (or OpenVINO with --runtime openvino) and needs --calib DATASET, "
                              "e.g. --calib fashion-mnist")  # fmt: skip
        if self.output_format == "pt2" and self.dynamic_batch:
            raise ConfigError("--dynamic-batch is for ONNX; a .pt2 package is compiled for one input shape")
