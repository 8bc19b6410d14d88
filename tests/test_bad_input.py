"""Bad input, end to end: every case gets a non-zero exit, one line on stderr naming the problem, no traceback
(without --debug) and no partial output; through the API, a starquad error class with the same message.

The table is the issue-#15 list (ImageFolder classes, resume, config types and ranges, model options,
checkpoints) plus what a search for more turned up. Cases share one tiny finished run (synthetic data)."""

import hashlib
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import starquad
from starquad.cli import main
from starquad.errors import StarquadError

TINY = ["--model", "starnet_s050", "--data", "synthetic", "--img-size", "16", "--epochs", "2", "-b", "50",
        "--smoothing", "0", "--threads", "1", "--warmup-epochs", "0"]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A finished 2-epoch run and a folder of broken files, made once."""
    root = tmp_path_factory.mktemp("bad")
    run = root / "run"
    assert main(["train", *TINY, "--output", str(run)]) == 0
    good = run / "best.safetensors"
    data = good.read_bytes()
    (root / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (root / "empty.safetensors").write_bytes(b"")
    (root / "random.safetensors").write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    save_file(starquad.create_model("starnet_s100", num_classes=10).state_dict(), str(root / "other.safetensors"))
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "broken.yaml").write_text("epochs: [1, 2\n")
    (root / "typo.yaml").write_text("learning_rate: 0.1\n")
    (root / "one.yaml").write_text("warmup_epochs: one\n")
    (root / "bad_kind.yaml").write_text("lr: [1, 2]\n")
    (root / "binary.yaml").write_bytes(b"\xff\xfe\x00lr")
    (root / "notes.txt").write_text("x")
    state = load_file(str(good))
    next(v for v in state.values() if v.is_floating_point()).view(-1)[0] = float("nan")
    save_file(state, str(root / "nan.safetensors"))
    for split in ("train", "val"):  # an ImageFolder whose training split has one file that is not an image
        for cls in ("a", "b"):
            (root / "imagefolder_corrupt" / split / cls).mkdir(parents=True)
            Image.new("RGB", (20, 20), (200 if cls == "a" else 20, 90, 90)).save(
                root / "imagefolder_corrupt" / split / cls / "ok.png")
    (root / "imagefolder_corrupt" / "train" / "a" / "bad.png").write_bytes(b"\x89PNG not really")
    empty_folder = root / "imagefolder_empty"
    (empty_folder / "train").mkdir(parents=True)
    (empty_folder / "val").mkdir()
    return root


def _run_copy(files: Path, tmp_path: Path, edit=None) -> Path:
    run = tmp_path / "run"
    shutil.copytree(files / "run", run)
    if edit is not None:
        edit(run)
    return run


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _set_arg(run: Path, key: str, value: str) -> None:
    lines = (run / "args.yaml").read_text().splitlines()
    (run / "args.yaml").write_text("\n".join(f"{key}: {value}" if ln.startswith(f"{key}:") else ln for ln in lines))


# (id, argv builder (files, tmp) -> argv, what stderr must name). A train case whose argv has no --output
# writes to tmp/out, which must not exist afterwards (nothing partial).
CASES = [
    # names
    ("unknown-model", lambda f, t: ["train", "--model", "starnet_s9", "--data", "synthetic"], "unknown model 'starnet_s9'"),
    ("unknown-dataset", lambda f, t: ["train", "--data", "cifar"], "unknown dataset 'cifar'"),
    ("missing-data-dir", lambda f, t: ["train", "--data-dir", "/nonexistent"], "Fashion-MNIST not found"),
    ("imagefolder-no-dir", lambda f, t: ["train", "--data", "imagefolder"], "imagefolder needs --data-dir"),
    ("imagefolder-no-classes", lambda f, t: ["train", "--data", "imagefolder", "--data-dir",
                                             str(f / "imagefolder_empty")], "imagefolder_empty/train"),
    ("bench-unknown-model", lambda f, t: ["bench", "flops", "resnet9000"], "unknown model 'resnet9000'"),
    ("data-info-unknown", lambda f, t: ["data", "info", "mnist-fashion"], "unknown dataset 'mnist-fashion'"),
    # flag types and ranges (one checked place: TrainConfig.from_dict)
    ("epochs-negative", lambda f, t: ["train", "--epochs", "-2"], "epochs must be >= 1"),
    ("epochs-word", lambda f, t: ["train", "--epochs", "ten"], "epochs must be an integer, got 'ten'"),
    ("lr-word", lambda f, t: ["train", "--lr", "fast"], "lr must be a number, got 'fast'"),
    ("lr-zero", lambda f, t: ["train", "--lr", "0"], "lr must be > 0"),
    ("lr-nan", lambda f, t: ["train", "--lr", "nan"], "lr must be a finite number"),
    ("clip-grad-negative", lambda f, t: ["train", "--clip-grad", "-1"], "clip_grad must be > 0"),
    ("img-size-huge", lambda f, t: ["train", "--img-size", "100000"], "img_size must be >= 8 and <= 2048"),
    ("img-size-tiny", lambda f, t: ["train", "--img-size", "4"], "img_size must be >= 8"),
    ("batch-zero", lambda f, t: ["train", "-b", "0"], "batch_size must be >= 1"),
    ("scale-reversed", lambda f, t: ["train", "--scale", "0.9", "0.5"], "scale must be two numbers 0 < MIN <= MAX"),
    ("color-jitter-negative", lambda f, t: ["train", "--color-jitter", "-1"], "color_jitter must be >= 0"),
    ("smoothing-one", lambda f, t: ["train", "--smoothing", "1"], "smoothing must be >= 0 and <= 0.999"),
    ("mixup-prob-two", lambda f, t: ["train", "--mixup-prob", "2"], "mixup_prob must be >= 0 and <= 1"),
    ("seed-negative", lambda f, t: ["train", "--seed", "-1"], "seed must be >= 0"),
    ("threads-zero", lambda f, t: ["train", "--threads", "0"], "threads must be >= 1"),
    ("workers-negative", lambda f, t: ["train", "-j", "-1"], "workers must be >= 0"),
    ("warmup-too-long", lambda f, t: ["train", "--epochs", "3", "--warmup-epochs", "3"],
     "warmup_epochs (3) must be smaller than epochs (3)"),
    ("min-lr-above-lr", lambda f, t: ["train", "--lr", "1e-3", "--min-lr", "1e-2"], "min_lr (0.01) must not exceed lr"),
    ("interpolation-unknown", lambda f, t: ["train", "--interpolation", "cubic"], "unknown interpolation 'cubic'"),
    ("crop-pct-zero", lambda f, t: ["train", "--crop-pct", "0"], "crop_pct must be > 0"),
    ("flag-missing-value", lambda f, t: ["train", "--lr"], "argument --lr: expected one argument"),
    ("model-kwargs-list", lambda f, t: ["train", "--model-kwargs", "[1, 2]"], "expected a mapping"),
    # recipes
    ("recipe-missing", lambda f, t: ["train", "-c", str(f / "nope.yaml")], "nope.yaml not found"),
    ("recipe-not-mapping", lambda f, t: ["train", "-c", str(f / "list.yaml")], "must be a mapping of option: value"),
    ("recipe-bad-yaml", lambda f, t: ["train", "-c", str(f / "broken.yaml")], "is not valid YAML"),
    ("recipe-binary", lambda f, t: ["train", "-c", str(f / "binary.yaml")], "is not valid YAML"),
    ("recipe-unknown-key", lambda f, t: ["train", "-c", str(f / "typo.yaml")],
     "unknown key(s) learning_rate (did you mean lr?); 'starquad train --help' lists every option"),
    ("recipe-warmup-word", lambda f, t: ["train", "-c", str(f / "one.yaml")], "warmup_epochs must be an integer, got 'one'"),
    ("recipe-lr-list", lambda f, t: ["train", "-c", str(f / "bad_kind.yaml")], "lr must be a number, got [1, 2]"),
    # model options
    ("depths-negative", lambda f, t: ["train", *TINY, "--model-kwargs", "{depths: [1, -1, 3, 1]}"],
     "depths must be a list of block counts >= 0"),
    ("base-dim-zero", lambda f, t: ["train", *TINY, "--model-kwargs", "{base_dim: 0}"], "base_dim must be an integer >= 1"),
    ("drop-rate-word", lambda f, t: ["train", *TINY, "--model-kwargs", "{drop_rate: high}"],
     "drop_rate must be a number in [0, 1), got 'high'"),
    ("in-chans-twice", lambda f, t: ["train", *TINY, "--model-kwargs", "{in_chans: 3}"],
     "model_kwargs must not set in_chans"),
    ("unknown-model-option", lambda f, t: ["train", *TINY, "--model-kwargs", "{wings: 2}"],
     "starnet_s050 does not take these options"),
    ("fusion-unknown", lambda f, t: ["train", *TINY, "--model-kwargs", "{fusion: product}"], "unknown fusion 'product'"),
    # resume
    ("resume-missing", lambda f, t: ["train", "--resume", "/nonexistent/run"], "args.yaml not found (not a starquad run directory?)"),
    ("resume-empty-args", lambda f, t: ["train", "--resume", str(_run_copy(f, t, lambda r: (r / "args.yaml")
                                        .write_text("")))], "args.yaml is empty"),
    ("resume-corrupt-args", lambda f, t: ["train", "--resume", str(_run_copy(f, t, lambda r: (r / "args.yaml")
                                          .write_text("model: [\n")))], "args.yaml is not valid YAML"),
    ("resume-other-model", lambda f, t: ["train", "--resume", str(_run_copy(f, t)), "--model", "starnet_s100"],
     "cannot change model (run has 'starnet_s050', asked for 'starnet_s100')"),
    ("resume-finished", lambda f, t: ["train", "--resume", str(_run_copy(f, t))], "already finished all 2 epochs"),
    ("resume-truncated-state", lambda f, t: ["train", "--resume", str(_run_copy(f, t, lambda r: (r / "last.state.pt")
                                             .write_bytes(b"\x00" * 10))), "--epochs", "3"], "unreadable"),
    ("resume-weights-of-another-model", lambda f, t: ["train", "--resume", str(_run_copy(
        f, t, lambda r: _set_arg(r, "model", "starnet_s100"))), "--epochs", "3"], "does not fit StarNet"),
    # checkpoints
    ("eval-no-model", lambda f, t: ["eval", "--checkpoint", str(f / "run" / "best.safetensors")], "name the model"),
    ("eval-missing-file", lambda f, t: ["eval", "--model", "starnet_s050", "--checkpoint", str(f / "nope.safetensors"),
                                        "--data", "synthetic"], "checkpoint file not found"),
    ("eval-truncated", lambda f, t: ["eval", "--model", "starnet_s050", "--checkpoint",
                                     str(f / "truncated.safetensors"), "--data", "synthetic", "--img-size", "16"],
     "truncated.safetensors: cannot read checkpoint"),
    ("eval-empty", lambda f, t: ["eval", "--model", "starnet_s050", "--checkpoint", str(f / "empty.safetensors"),
                                 "--data", "synthetic", "--img-size", "16"], "empty.safetensors: cannot read checkpoint"),
    ("eval-random-bytes", lambda f, t: ["eval", "--model", "starnet_s050", "--checkpoint",
                                        str(f / "random.safetensors"), "--data", "synthetic", "--img-size", "16"],
     "random.safetensors: cannot read checkpoint"),
    ("eval-other-model", lambda f, t: ["eval", "--model", "starnet_s050", "--checkpoint", str(f / "other.safetensors"),
                                       "--data", "synthetic", "--img-size", "16"], "shape mismatch(es)"),
    ("eval-text-file", lambda f, t: ["eval", "--model", "starnet_s050", "--checkpoint", str(f / "notes.txt"),
                                     "--data", "synthetic", "--img-size", "16"], "notes.txt: cannot read checkpoint"),
    ("eval-nan-weights", lambda f, t: ["eval", "--model", "starnet_s050", "--checkpoint", str(f / "nan.safetensors"),
                                       "--data", "synthetic", "--img-size", "16"], "holds NaN or Inf weights"),
    ("export-bad-checkpoint", lambda f, t: ["export", "starnet_s050", "-o", str(t / "out.onnx"), "--checkpoint",
                                            str(f / "truncated.safetensors")], "cannot read checkpoint"),
    # int8 export (the drop past --max-drop and a runtime not installed: tests/deploy/test_int8.py)
    ("export-int8-no-calib", lambda f, t: ["export", "starnet_s050", "-o", str(t / "out.onnx"), "--int8"],
     "needs --calib DATASET"),
    ("export-int8-unknown-calib", lambda f, t: ["export", "starnet_s050", "-o", str(t / "out.onnx"), "--int8", "--calib",
                                                "cifar"], "unknown dataset 'cifar'"),
    ("export-int8-calib-channels", lambda f, t: ["export", "starnet_s050", "-o", str(t / "out.onnx"), "--img-size", "28",
                                                 "--int8", "--calib", "fashion-mnist"],
     "has 1-channel images but the model takes 3 channels"),
    ("export-int8-calib-size", lambda f, t: ["export", "starnet_s050", "-o", str(t / "out.onnx"), "--in-chans", "1",
                                             "--img-size", "16", "--int8", "--calib", "fashion-mnist"],
     "has 28×28 images but the model takes 16×16; pass --calib-resize"),
    ("export-int8-calib-n-zero", lambda f, t: ["export", "starnet_s050", "-o", str(t / "out.onnx"), "--img-size", "16",
                                               "--int8", "--calib", "synthetic", "--calib-n", "0"],
     "calib_n must be >= 1"),
    ("export-int8-openvino-onnx-name", lambda f, t: ["export", "starnet_s050", "-o", str(t / "out.onnx"), "--int8",
                                                     "--calib", "synthetic", "--runtime", "openvino"],
     "an int8 model for openvino is written as .xml"),
    # bench
    ("bench-no-model", lambda f, t: ["bench", "latency"], "name at least one model"),
    ("bench-threads-zero", lambda f, t: ["bench", "throughput", "starnet_s050", "--threads", "0", "--runs", "1"],
     "threads must be >= 1"),
    ("bench-memory-batch-one", lambda f, t: ["bench", "memory", "starnet_s050", "--batch", "1", "--img-size", "16",
                                             "--no-rss"], "batch 1 at 16×16 leaves a BatchNorm layer one value per"),
    ("bench-flops-tiny-image", lambda f, t: ["bench", "flops", "starnet_s050", "--img-size", "4"],
     "img_size must be >= 16 and <= 4096, got 4"),
    ("bench-backend-unknown", lambda f, t: ["bench", "latency", "starnet_s050", "--backend", "tensorrt"],
     "invalid choice: 'tensorrt'"),
    ("reproduce-unknown-section", lambda f, t: ["reproduce", "--sections", "nope", "--out", str(t / "rep")],
     "unknown report section(s) nope"),
    ("reproduce-max-seeds-below-pilot", lambda f, t: ["reproduce", "--sections", "data", "--out", str(t / "out"), "--max-seeds", "2"],
     "seed maximum (2) must be a whole number >= the pilot (3)"),
    ("reproduce-pilot-one-seed", lambda f, t: ["reproduce", "--sections", "data", "--out", str(t / "out"), "--pilot-seeds", "1"],
     "pilot needs at least 2 seeds"),
    ("reproduce-no-runs", lambda f, t: ["reproduce", "--sections", "data", "--out", str(t / "out"), "--max-runs", "0"],
     "budget of runs must be a whole number >= 1"),
    ("reproduce-negative-delta", lambda f, t: ["reproduce", "--sections", "data", "--out", str(t / "out"), "--top1-delta", "-1"],
     "top1_delta must be > 0 and <= 100, got -1"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_leaves_nothing(case, files, tmp_path, capsys):
    _, build, message = case
    argv = build(files, tmp_path)
    out = tmp_path / "out"
    if argv[0] == "train" and "--resume" not in argv and "--output" not in argv:
        argv = [*argv, "--output", str(out)]
    resume_dir = Path(argv[argv.index("--resume") + 1]) if "--resume" in argv else None
    before = _digest(resume_dir) if resume_dir is not None and resume_dir.is_dir() else None
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code != 0
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err and "error:" in err, err
    assert not out.exists()  # no partial run directory
    assert not (tmp_path / "out.onnx").exists() and not (tmp_path / "out.json").exists()
    if before is not None:
        assert _digest(resume_dir) == before  # a refused resume changes nothing


def test_a_corrupt_image_is_named_without_the_exception_class(files, tmp_path, capsys):
    argv = ["train", *TINY[:2], "--data", "imagefolder", "--data-dir", str(files / "imagefolder_corrupt"),
            "--img-size", "16", "--epochs", "1", "-b", "2", "--output", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) != 0
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("starquad: error:")]
    assert len(errors) == 1 and "bad.png: not a readable image" in errors[0], errors  # after the run's log lines
    assert "UnidentifiedImageError" not in errors[0] and "OSError" not in errors[0]


def test_a_full_disk_is_named_and_leaves_the_file_as_it_was(tmp_path, capsys, monkeypatch):
    import errno
    import os

    target = tmp_path / "flops.json"
    target.write_text("before")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main(["bench", "flops", "starnet_s050", "--img-size", "32", "--json", str(target)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no space left on the device to write {target}" in err, err
    assert "Errno" not in err and "OSError" not in err
    assert target.read_text() == "before" and [p.name for p in tmp_path.iterdir()] == ["flops.json"]


def test_at_least_forty_bad_inputs():
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: starquad.create_model("starnet_s050", depths=(1, -1, 1, 1)), "depths must be a list"),
        (lambda: starquad.create_model("quadranet_xxs36", base_dim=0), "base_dim must be an integer >= 1"),
        (lambda: starquad.create_model("hornet_t", drop_rate="high"), "drop_rate must be a number in [0, 1)"),
        (lambda: starquad.create_model("starnet_s050", pretrained=True), "never downloads weights"),
        (lambda: starquad.create_model("starnet_s050", checkpoint_path="/nonexistent.pth"), "checkpoint file not found"),
        (lambda: starquad.create_model("starnet_s050", wings=2), "does not take these options"),
        (lambda: starquad.train.TrainConfig.from_dict({"lr": "abc"}), "lr must be a number, got 'abc'"),
        (lambda: starquad.train.TrainConfig.from_dict({"amp": "maybe"}), "amp must be true or false"),
    ],
)  # fmt: skip
def test_api_raises_starquad_errors(call, message):
    import starquad.train  # noqa: F401

    with pytest.raises(StarquadError) as info:
        call()
    assert message in str(info.value)
