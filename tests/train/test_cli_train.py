from pathlib import Path

import pytest

from starquad.cli import main
from starquad.train import TrainConfig, load_recipe
from starquad.train.config import config_from_args

RECIPES = sorted((Path(__file__).resolve().parents[2] / "starquad" / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_are_valid(path):
    cfg = TrainConfig.from_dict(load_recipe(path), source=str(path))
    cfg.validate()


def test_a_shipped_recipe_is_found_by_name_wherever_starquad_is_installed():
    from starquad.errors import ConfigError
    from starquad.train.config import recipe_names

    assert {p.stem for p in RECIPES} == set(recipe_names()) >= {"fashion_mnist", "starnet_imagenet"}
    assert load_recipe("fashion_mnist") == load_recipe(RECIPES[[p.stem for p in RECIPES].index("fashion_mnist")])
    with pytest.raises(ConfigError, match="no recipe 'fashion': not a file, and starquad ships fashion_mnist, "):
        load_recipe("fashion")


def test_train_then_eval_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--model", "starnet_s050", "--data", "synthetic", "--img-size", "16", "--epochs", "2",
            "-b", "50", "--smoothing", "0", "--output", str(run), "--threads", "2"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "best top-1" in captured.out  # the result on stdout, progress on stderr (logging)
    assert "steps/epoch" in captured.err and "effective batch 50" in captured.err
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["eval", "--model", "starnet_s050", "--checkpoint", str(run / "best.safetensors"), "--data",
                 "synthetic", "--img-size", "16"]) == 0  # fmt: skip
    assert "synthetic test (200 images): top-1" in capsys.readouterr().out


def test_recipe_sets_defaults_and_flags_override(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("epochs: 7\nlr: 0.01\nbatch-size: 32\nscale: [0.5, 1]\ncolor_jitter: 0\n")
    from starquad.cli import build_parser

    args = build_parser().parse_args(["train", "-c", str(recipe), "--lr", "0.5", "--ratio", "1", "1"])
    cfg = config_from_args(args, args.config)
    assert (cfg.epochs, cfg.lr, cfg.batch_size, cfg.color_jitter) == (7, 0.5, 32, 0.0)
    assert cfg.scale == (0.5, 1.0) and cfg.ratio == (1.0, 1.0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "fashion-mnist", "--data-dir", "/nonexistent"], "Fashion-MNIST not found"),
        (["train", "--model", "starnet_s9", "--data", "synthetic"], "unknown model 'starnet_s9'"),
        (["train", "--epochs", "-2"], "epochs must be >= 1"),
        (["train", "--scale", "0.9", "0.5"], "scale must be two numbers 0 < MIN <= MAX, got 0.9 0.5"),
        (["train", "--color-jitter", "-1"], "color_jitter must be >= 0"),
        (["train", "--resume", "/nonexistent/run"], "args.yaml not found (not a starquad run directory?)"),
        (["eval", "--model", "starnet_s050", "--checkpoint", "/nonexistent.safetensors", "--data", "synthetic"],
         "checkpoint file not found"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_nonzero(argv, message, capsys, tmp_path):
    assert main([*argv, "--output", str(tmp_path)] if argv[0] == "train" else argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unknown_recipe_key_is_named(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("epochs: 1\nlearning_rate: 0.1\n")
    assert main(["train", "-c", str(recipe)]) == 1
    assert "unknown key(s) learning_rate" in capsys.readouterr().err


def test_model_kwargs_flag_replaces_the_recipes(tmp_path, capsys):
    from starquad.cli import build_parser

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_kwargs: {stem_stride: 1}\n")
    args = build_parser().parse_args(["train", "-c", str(recipe), "--model-kwargs", "{}"])
    assert config_from_args(args, args.config).model_kwargs == {}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--model-kwargs", "[1, 2]"])
    assert "expected a mapping" in capsys.readouterr().err
