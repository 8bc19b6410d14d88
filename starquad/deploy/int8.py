"""int8 post-training static quantization: ONNX Runtime (QDQ) and OpenVINO (NNCF), with the products chosen.

:func:`export_int8` quantizes the verified float export (:func:`~starquad.deploy.onnx.onnx_bytes` of the inference
form) with per-channel int8 weights and activations calibrated on real images — through
``onnxruntime.quantization.quantize_static`` (QDQ format; calibration ``minmax``, ``percentile`` or ``entropy``)
or, with ``runtime='openvino'``, through NNCF's ``nncf.quantize`` on the OpenVINO model (its own calibration).

**The star and quadratic products** (``Mul`` nodes whose two inputs are both activations: StarNet's
``act(f1(x)) ⊙ f2(x)``, the quadratic conv's ``a ⊙ b``, gnConv's gates) are where int8 is said to be fragile: a
product of two activations spans a far wider range than either. So each product is measured, not assumed:

1. its *sensitivity*: the signal-to-quantization-noise ratio (dB) of its output in the all-int8 model against the
   float model's, on calibration images (:func:`product_sqnr`);
2. the top-1 drop of the all-int8 model on a *selection set* of labelled training images that the calibration
   did not use (never the test split);
3. while that drop exceeds ``max_drop``, the least-SQNR product still quantized is kept in float (the product and
   the ops that read it: int8 kernels cannot take a float input) and the drop measured again.

The shipped choice is the first that meets ``max_drop`` on the selection set (often: every product quantized); it is
then checked on the test split, and the export fails, writing nothing, when that drop exceeds ``max_drop``. The
choice, each product's SQNR and both drops (the shipped choice and every product quantized) are in
:class:`Int8Result` and in the JSON written beside the model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from starquad.deploy.verify import ExportError
from starquad.errors import ConfigError, DatasetError
from starquad.extras import require

__all__ = ["CALIBRATION_METHODS", "INT8_RUNTIMES", "Int8Result", "ProductChoice", "calibration_set", "choose_products",
           "export_int8", "openvino_int8", "ort_int8", "product_nodes", "product_scopes", "product_sqnr",
           "quantize_int8"]  # fmt: skip

_LOG = logging.getLogger(__name__)
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
INT8_RUNTIMES = ("onnxruntime", "openvino")
_EVAL_BATCH = 250
_SQNR_IMAGES = 64  # calibration images on which each product's SQNR is measured


# --- calibration data ---------------------------------------------------------------------------------------------


def _batch_of(model_proto: Any, default: int) -> int:
    """1 for a model exported for batch 1 (its input's first dimension), else ``default``."""
    return 1 if model_proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1 else default


def _check_method(method: str) -> None:
    if method not in CALIBRATION_METHODS:
        raise ConfigError(f"unknown calibration method '{method}'; choose one of: {', '.join(CALIBRATION_METHODS)}")


def _check_count(n: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"{what} must be a whole number >= 1, got {n!r}")


def calibration_set(dataset: str, input_size: Sequence[int], n: int | None, *, split: str = "train",
                    data_dir: str | os.PathLike | None = None, resize: bool = False, seed: int = 0,
                    skip: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``n`` labelled images of ``dataset`` (all of the split when ``None``) as the model takes them: float32
    ``(n, C, H, W)`` normalised with the dataset's statistics, and their labels.

    The images are drawn in a fixed random order of ``seed``; ``skip`` leaves out the first ``skip`` of that order
    (a selection set disjoint from the calibration images). ``synthetic`` images are generated at the model's size.

    Raises:
        DatasetError: unknown dataset, not images, fewer images than asked, channels that differ from the model's,
            or a native size that differs from the model's unless ``resize`` (bilinear, as ``starquad eval`` does).
        ConfigError: ``n`` < 1.
    """
    import torch

    from starquad.data import BatchAugment, build_dataset, build_transform, dataset_spec

    if n is not None:
        _check_count(n, "the number of calibration images (--calib-n)")
    spec = dataset_spec(dataset)
    chans, height, width = (int(v) for v in input_size)
    if not spec.is_image:
        raise DatasetError(f"'{dataset}' is not an image dataset; calibrate on images the model takes")
    kwargs = {"in_chans": chans, "img_size": height, "num_samples": 2000} if dataset == "synthetic" else {}
    if spec.in_chans != chans and dataset != "synthetic":
        raise DatasetError(f"calibration set '{dataset}' has {spec.in_chans}-channel images but the model takes "
                           f"{chans} channels; calibrate on a {chans}-channel dataset")  # fmt: skip
    native = height if dataset == "synthetic" else spec.img_size
    if native is not None and (native, native) != (height, width) and not resize:
        raise DatasetError(f"calibration set '{dataset}' has {native}×{native} images but the model takes "
                           f"{height}×{width}; pass --calib-resize to resize them (bilinear, as 'starquad eval' "
                           f"does) or export at --img-size {native}")  # fmt: skip
    mean = spec.mean if len(spec.mean) == chans else spec.mean[:1] * chans
    std = spec.std if len(spec.std) == chans else spec.std[:1] * chans
    # a folder read per image (imagefolder) gets timm's evaluation transform, as the papers' models are evaluated;
    # the in-memory datasets are resized as whole batches below
    transform = None if native is not None else build_transform((height, width), False, chans, mean, std,
                                                                 crop_pct=0.875, interpolation="bicubic")  # fmt: skip
    ds = build_dataset(dataset, split, data_dir, transform, **kwargs)
    order = np.random.default_rng(seed).permutation(len(ds))[skip:]
    if n is not None and n > len(order):
        raise DatasetError(f"'{dataset}' has {len(order)} {split} images to draw from, fewer than the {n} asked; "
                           "ask for fewer")  # fmt: skip
    idx = np.sort(order[:n] if n is not None else order)
    if transform is not None:
        images = torch.stack([ds[int(i)][0] for i in idx]).numpy()
    else:
        images = BatchAugment(height, chans, mean, std, training=False)(torch.from_numpy(np.array(ds.images[idx])))
        images = images.numpy()
    return images, np.asarray(ds.targets)[idx]


# --- the products and their sensitivity ---------------------------------------------------------------------------


def product_nodes(model_proto: Any) -> list[str]:
    """Names of the ``Mul`` nodes whose inputs are both activations (no initializer or constant): the star and
    quadratic products."""
    graph = model_proto.graph
    constants = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant"
                                                        for o in n.output}  # fmt: skip
    return [n.name for n in graph.node if n.op_type == "Mul" and len(n.input) == 2
            and not any(i in constants for i in n.input)]  # fmt: skip


def product_scopes(model_proto: Any) -> dict[str, str]:
    """Each product node's module path in the PyTorch model (``stages.0.1.star``), from the exporter's
    ``pkg.torch.onnx.name_scopes`` metadata; ``''`` where the node has none."""
    import ast

    out = {}
    for node in model_proto.graph.node:
        meta = {m.key: m.value for m in node.metadata_props}
        try:
            scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
        except (ValueError, SyntaxError):
            scopes = []
        out[node.name] = scopes[-2] if len(scopes) >= 2 else ""
    return out


def _consumers(model_proto: Any, names: Sequence[str]) -> list[str]:
    """``names`` and every node that reads one of their outputs."""
    by_name = {n.name: n for n in model_proto.graph.node}
    outputs = {o for name in names for o in by_name[name].output}
    return list(names) + [n.name for n in model_proto.graph.node if outputs & set(n.input)]


def _quiet():
    """The quantizers' progress lines and advice (the root logger's, NNCF's) kept out of our output."""
    from starquad.deploy.onnx import quiet

    return quiet("", "nncf")


class _Reader:
    """``onnxruntime.quantization.CalibrationDataReader`` over an array, a batch at a time."""

    def __init__(self, images: np.ndarray, input_name: str, batch: int = 16):
        self.images, self.name, self.batch, self.i = images, input_name, batch, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.images):
            return None
        self.i += self.batch
        return {self.name: self.images[self.i - self.batch : self.i]}

    def rewind(self) -> None:
        self.i = 0


def ort_int8(float_model: bytes, calib: np.ndarray, *, method: str = "minmax", keep_float: Sequence[str] = ()
             ) -> bytes:  # fmt: skip
    """``float_model`` (ONNX bytes, batch dimension symbolic or 1) statically quantized by ONNX Runtime: QDQ,
    per-channel int8 weights, uint8 activations calibrated on ``calib`` with ``method``; the products in
    ``keep_float`` and the nodes reading them stay in float."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    _check_method(method)
    proto = onnx.load_from_string(float_model)
    name, batch = proto.graph.input[0].name, _batch_of(proto, 16)
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(float_model)
        quantize_static(str(src), str(dst), _Reader(calib, name, batch), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=getattr(CalibrationMethod, method.capitalize().replace("max", "Max")),
                        nodes_to_exclude=_consumers(proto, keep_float) if keep_float else [])  # fmt: skip
        return dst.read_bytes()


def product_sqnr(float_model: bytes, int8_model: bytes, images: np.ndarray, products: Sequence[str]
                 ) -> dict[str, float]:  # fmt: skip
    """Each product's output SQNR in dB, ``10·log10(Σ x² / Σ (x − x̂)²)`` over ``images``: ``x`` the float model's
    product, ``x̂`` the int8 model's after its output quantization (the QuantizeLinear → DequantizeLinear that follows
    it), so the figure holds the error of the product's inputs and of its own output range."""
    floats = _tensors(float_model, images, _outputs_of(float_model, products))
    quants = _tensors(int8_model, images, _outputs_of(int8_model, products, dequantized=True))
    out = {}
    for p in products:
        signal, noise = float(np.sum(floats[p] ** 2)), float(np.sum((floats[p] - quants[p]) ** 2))
        out[p] = float("inf") if noise == 0 else 10 * float(np.log10(max(signal, 1e-30) / noise))
    return out


def _outputs_of(model: bytes, nodes: Sequence[str], dequantized: bool = False) -> dict[str, str]:
    """The tensor each of ``nodes`` writes; with ``dequantized``, that of the DequantizeLinear after its
    QuantizeLinear (where there is one)."""
    import onnx

    graph = onnx.load_from_string(model).graph
    written = {n.name: n.output[0] for n in graph.node}
    readers = {(n.op_type, n.input[0]): n.output[0] for n in graph.node if n.op_type in ("QuantizeLinear",
                                                                                       "DequantizeLinear")}  # fmt: skip
    out = {}
    for node in nodes:
        tensor = written[node]
        if dequantized and ("QuantizeLinear", tensor) in readers:
            tensor = readers.get(("DequantizeLinear", readers[("QuantizeLinear", tensor)]), tensor)
        out[node] = tensor
    return out


def _tensors(model: bytes, images: np.ndarray, names: dict[str, str]) -> dict[str, np.ndarray]:
    """The values of ``names`` (key -> tensor) when ``model`` runs ``images`` one at a time (ONNX Runtime)."""
    import onnx

    from starquad.deploy.onnx import ort_session

    proto = onnx.load_from_string(model)
    present = {o.name for o in proto.graph.output}
    proto.graph.output.extend(onnx.ValueInfoProto(name=t) for t in dict.fromkeys(names.values()) if t not in present)
    session = ort_session(proto.SerializeToString(), 1, optimize=False)  # no fusion: every tensor stays as named
    wanted = list(dict.fromkeys(names.values()))
    runs = [session.run(wanted, {proto.graph.input[0].name: images[i : i + 1]}) for i in range(len(images))]
    values = {t: np.concatenate([r[j] for r in runs]) for j, t in enumerate(wanted)}
    return {k: values[t] for k, t in names.items()}


def openvino_int8(float_model: bytes, calib: np.ndarray, *, keep_float: Sequence[str] = ()) -> Any:
    """``float_model`` (ONNX bytes) read by OpenVINO and quantized by NNCF (``nncf.quantize``, its default
    calibration) on ``calib``; the products in ``keep_float`` and the ops reading them are NNCF's ignored scope."""
    import onnx

    ov, nncf = _openvino_and_nncf()
    proto = onnx.load_from_string(float_model)
    batch = _batch_of(proto, 16)
    dataset = nncf.Dataset([calib[i : i + batch] for i in range(0, len(calib), batch)])
    ignored = nncf.IgnoredScope(names=_consumers(proto, keep_float), validate=False) if keep_float else None
    with _quiet():
        model = ov.Core().read_model(model=float_model)
        return nncf.quantize(model, dataset, subset_size=len(calib), ignored_scope=ignored)


def _openvino_and_nncf():
    return require("openvino", "int8 for OpenVINO"), require("nncf", "int8 for OpenVINO")


def _ort_available() -> None:
    require("onnxruntime.quantization", "int8 for ONNX Runtime")


# --- running a quantized model ------------------------------------------------------------------------------------


def _predict(runtime: str, model: Any, images: np.ndarray, threads: int) -> np.ndarray:
    """Logits of ``model`` (ONNX bytes for onnxruntime, an OpenVINO model or ONNX bytes for openvino)."""
    import onnx

    if runtime == "onnxruntime":
        from starquad.deploy.onnx import ort_session

        session = ort_session(model, threads)
        name = session.get_inputs()[0].name
        run = lambda x: session.run(None, {name: x})[0]  # noqa: E731
    else:
        ov, _ = _openvino_and_nncf()
        core = ov.Core()
        source = core.read_model(model=model) if isinstance(model, bytes) else model
        compiled = core.compile_model(source, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                      "INFERENCE_PRECISION_HINT": "f32"})  # fmt: skip
        run = lambda x: next(iter(compiled(x).values()))  # noqa: E731
    step = _batch_of(onnx.load_from_string(model), _EVAL_BATCH) if isinstance(model, bytes) else _EVAL_BATCH
    return np.concatenate([np.asarray(run(images[i : i + step])) for i in range(0, len(images), step)])


def _top1(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(100.0 * np.mean(logits.argmax(1) == labels))


@dataclass(frozen=True)
class ProductChoice:
    """One product: its ONNX node, the module it comes from, its output SQNR (dB) in the all-int8 model, and
    whether it ships in float."""

    node: str
    module: str
    sqnr_db: float | None
    kept_float: bool


@dataclass(frozen=True)
class Int8Result:
    """What :func:`export_int8` wrote and measured (top-1 in %, drops in points: float − int8)."""

    path: Path
    runtime: str
    method: str
    calib: str
    calib_n: int
    eval_n: int
    top1_float: float
    top1_int8: float
    drop: float
    drop_all_quantized: float
    selection_drops: list[dict[str, Any]]  # the selection steps: kept-float products and the drop each gave
    products: list[ProductChoice] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"], out["files"] = str(self.path), [str(f) for f in self.files]
        return out


@dataclass(frozen=True)
class _Quantizer:
    """Quantizes ``float_model`` for ``runtime`` with a set of products kept in float; each set once."""

    runtime: str
    float_model: bytes
    calib: np.ndarray
    method: str
    threads: int
    made: dict = field(default_factory=dict, compare=False, repr=False)

    def __call__(self, keep_float: Sequence[str]) -> Any:
        key = frozenset(keep_float)
        if key not in self.made:
            self.made[key] = (ort_int8(self.float_model, self.calib, method=self.method, keep_float=keep_float)
                              if self.runtime == "onnxruntime" else
                              openvino_int8(self.float_model, self.calib, keep_float=keep_float))  # fmt: skip
        return self.made[key]

    def top1(self, model: Any, images: np.ndarray, labels: np.ndarray) -> float:
        return _top1(_predict(self.runtime, model, images, self.threads), labels)


def choose_products(quantize: _Quantizer, products: Sequence[str], sqnr: dict[str, float], select: tuple,
                    max_drop: float, log: Callable[[str], None]) -> tuple[Any, list[str], list[dict]]:  # fmt: skip
    """The quantized model of the first choice whose top-1 drop on the selection set ``select`` (images, labels)
    is within ``max_drop``: every product quantized, then the least-SQNR ones kept in float one at a time."""
    images, labels = select
    base = quantize.top1(quantize.float_model, images, labels)
    order = sorted(products, key=lambda p: sqnr.get(p, float("inf")))
    steps, kept = [], []
    while True:
        model = quantize(kept)
        drop = base - quantize.top1(model, images, labels)
        steps.append({"kept_float": list(kept), "selection_drop": drop})
        log(f"  selection: {len(kept)} product(s) in float -> top-1 drop {drop:+.2f} points on {len(labels)} images")
        if drop <= max_drop or len(kept) == len(order):
            return model, kept, steps
        kept = order[: len(kept) + 1]


def quantize_int8(model: Any, input_size: Sequence[int] = (3, 224, 224), *, calib: str = "fashion-mnist",
                  calib_n: int = 512, runtime: str = "onnxruntime", method: str = "minmax", max_drop: float = 1.0,
                  select_n: int = 1000, eval_n: int | None = None, data_dir: str | os.PathLike | None = None,
                  resize: bool = False, seed: int = 0, threads: int = 2,
                  log: Callable[[str], None] | None = None) -> tuple[Any, Int8Result]:  # fmt: skip
    """Quantize ``model`` to int8 for ``runtime``, choosing the products kept in float, and measure it; nothing is
    written and nothing fails on the drop (:func:`export_int8` does both).

    Args:
        model: the model (left unchanged; its inference form is exported and verified first).
        input_size: ``(C, H, W)``.
        calib: the dataset whose training images calibrate (and select); its test split measures.
        calib_n: calibration images. select_n: selection images (disjoint from them). eval_n: test images
            (``None``: the whole split).
        runtime: ``'onnxruntime'`` or ``'openvino'``. method: ONNX Runtime's calibration method.
        max_drop: the top-1 drop (points) the choice aims at on the selection set.
        data_dir, resize, seed: for :func:`calibration_set`. threads: the runtime's threads.

    Returns:
        The quantized model (ONNX bytes, or an OpenVINO model) and its :class:`Int8Result` (``path``: empty).

    Raises:
        ConfigError: bad options, or the runtime is not installed (the message names the extra).
        DatasetError: the calibration set does not fit the model (:func:`calibration_set`).
        ExportError: the float export failed its check.
    """
    from starquad.deploy.onnx import export_onnx

    _check_options(runtime, method, max_drop, select_n, eval_n)
    (_ort_available() if runtime == "onnxruntime" else _openvino_and_nncf())
    size = tuple(int(v) for v in input_size)
    calib_x, _ = calibration_set(calib, size, calib_n, data_dir=data_dir, resize=resize, seed=seed)
    select = calibration_set(calib, size, select_n, data_dir=data_dir, resize=resize, seed=seed, skip=calib_n)
    test = calibration_set(calib, size, eval_n, split="test", data_dir=data_dir, resize=resize, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        float_model = export_onnx(model, Path(tmp) / "float.onnx", size, dynamic_batch=True).path.read_bytes()
    quantize = _Quantizer(runtime, float_model, calib_x, method, threads)
    shipped, result = _quantize_and_measure(quantize, select, test, max_drop, log or _LOG.info)
    return shipped, dataclasses.replace(result, calib=calib)


def export_int8(model: Any, path: str | os.PathLike, input_size: Sequence[int] = (3, 224, 224), *,
                runtime: str = "onnxruntime", max_drop: float = 1.0, **options: Any) -> Int8Result:
    """:func:`quantize_int8`, then check the test split's drop against ``max_drop`` and write the model.

    Args:
        path: ``.onnx`` (onnxruntime) or ``.xml`` (openvino; the weights go to the ``.bin`` beside it). The choice
            and the figures go to the same name with ``.json``.
        max_drop: the largest top-1 drop (points) allowed on the test split (and aimed at on the selection set).
        **options: the rest of :func:`quantize_int8`'s options (``calib``, ``calib_n``, ``method``, …).

    Raises:
        ExportError: besides :func:`quantize_int8`'s errors, an int8 model whose drop exceeds ``max_drop``
            (nothing written).
    """
    from starquad.io import atomic_write

    path = Path(path)
    want = ".xml" if runtime == "openvino" else ".onnx"
    if path.suffix != want:
        raise ConfigError(f"an int8 model for {runtime} is written as {want}, got '{path}'")
    shipped, result = quantize_int8(model, input_size, runtime=runtime, max_drop=max_drop, **options)
    if not result.drop <= max_drop:
        raise ExportError(f"int8 top-1 drop {result.drop:.2f} points > --max-drop {max_drop:g} on {result.eval_n} "
                          f"{result.calib} test images (float {result.top1_float:.2f}%, int8 "
                          f"{result.top1_int8:.2f}%); nothing written")  # fmt: skip
    files = _write(runtime, shipped, path)
    report = path.with_suffix(".json")
    result = dataclasses.replace(result, path=path, files=[*files, report])
    atomic_write(report, json.dumps(result.to_json(), indent=1) + "\n")
    return result


def _quantize_and_measure(quantize: _Quantizer, select: tuple, test: tuple, max_drop: float,
                          log: Callable[[str], None]) -> tuple[Any, Int8Result]:  # fmt: skip
    """Measure the products, choose, and measure the shipped choice and the all-int8 model on ``test``."""
    import onnx

    proto = onnx.load_from_string(quantize.float_model)
    products, scopes = product_nodes(proto), product_scopes(proto)
    all_ort = quantize([]) if quantize.runtime == "onnxruntime" else ort_int8(quantize.float_model, quantize.calib,
                                                                                 method=quantize.method)  # fmt: skip
    sqnr = product_sqnr(quantize.float_model, all_ort, quantize.calib[:_SQNR_IMAGES], products)
    for p in products:
        log(f"  product {scopes[p] or p} ({p}): output SQNR {sqnr.get(p, float('nan')):.1f} dB, every product int8")
    shipped, kept, steps = choose_products(quantize, products, sqnr, select, max_drop, log)
    top1_float, top1_int8 = quantize.top1(quantize.float_model, *test), quantize.top1(shipped, *test)
    top1_all = quantize.top1(quantize([]), *test) if kept else top1_int8
    method = quantize.method if quantize.runtime == "onnxruntime" else "nncf"
    result = Int8Result(Path(), quantize.runtime, method, "", len(quantize.calib), len(test[1]), top1_float,
                        top1_int8, top1_float - top1_int8, top1_float - top1_all, steps,
                        [ProductChoice(p, scopes[p], sqnr.get(p), p in kept) for p in products])  # fmt: skip
    return shipped, result


def _check_options(runtime: str, method: str, max_drop: float, select_n: int, eval_n: int | None) -> None:
    if runtime not in INT8_RUNTIMES:
        raise ConfigError(f"int8 export runs on {' or '.join(INT8_RUNTIMES)}, not '{runtime}'")
    _check_method(method)
    if not (isinstance(max_drop, (int, float)) and np.isfinite(max_drop) and max_drop >= 0):
        raise ConfigError(f"--max-drop must be a number of top-1 points >= 0, got {max_drop!r}")
    _check_count(select_n, "the number of selection images")
    if eval_n is not None:
        _check_count(eval_n, "the number of test images (--eval-n)")


def _write(runtime: str, model: Any, path: Path) -> list[Path]:
    """Write the quantized model atomically: the ONNX file, or OpenVINO's ``.bin`` then its ``.xml``."""
    from starquad.io import atomic_write

    if runtime == "onnxruntime":
        return [atomic_write(path, model)]
    ov, _ = _openvino_and_nncf()
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "model.xml"
        ov.save_model(model, str(xml), compress_to_fp16=False)
        weights = atomic_write(path.with_suffix(".bin"), xml.with_suffix(".bin").read_bytes())
        return [atomic_write(path, xml.read_bytes()), weights]
