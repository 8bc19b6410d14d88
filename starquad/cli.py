"""The ``starquad`` command line: parses, calls one library function, prints.

Errors caused by the input (unknown model or dataset, missing files, bad values) are printed as one
line on stderr with a non-zero exit status; ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
starquad — high-order interaction networks: the star operation / StarNet and quadratic
neurons / QuadraNet. Build the models, check the papers' claims, train, benchmark, deploy.

commands:
  models [PATTERN]      list model names (starquad's; --timm adds timm's, which work by name too);
                        --stats: params and MACs at the model's input size beside the paper's figures
  data list             list the datasets starquad can build
  data info NAME        counts per split and class, item shape, where the files were found
  train                 train a model (timm recipes: AdamW, cosine, mixup, EMA, …); resumable, torchrun-ready
  eval                  evaluate a checkpoint on a dataset's test split (top-1, top-5, loss)
  bench blocks          QuadraNet's block study (Table II): saved activations, peak RSS, forward and
                        training time of stacks of QuadraBlock / HorBlock / ConvBlock / SkipBlock /
                        SwinBlock, as ratios to HorBlock
  bench latency MODEL.. inference latency: eager / compile / onnxruntime / openvino, --protocol paper,
                        --roofline (fraction of this machine's GEMM peak), --plot (top-1 vs latency)
  bench throughput MODEL.. inference and training samples/s at a batch
  bench memory MODEL..  activations saved for backward, peak RSS of a training step, ratios to the first
  bench flops MODEL..   params and MACs beside the papers' figures
  export MODEL -o F.onnx  ONNX export (folded), verified against PyTorch in onnxruntime
  reproduce             test the papers' claims at small scale; writes report.md, results.json, PNGs
  nas search                  search a space under a latency budget that holds when measured
  nas retrain                 train a searched architecture from scratch
  nas compare                 searched networks at equal measured latency (the paper's Table III)
  nas latency build|validate  a latency table of this machine for a search space, and its accuracy

Run 'starquad COMMAND --help' for a command's options.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (the usage block stays in --help)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _yaml_mapping(text: str) -> dict:
    from starquad.options import yaml_mapping  # here, not at the top: `starquad --help` stays fast

    return yaml_mapping(text)


def _common() -> argparse.ArgumentParser:
    p = _Parser(add_help=False)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
    return p


def build_parser() -> argparse.ArgumentParser:

    common = _common()
    parser = _Parser(
        prog="starquad", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more detail in the progress log")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", parents=[common], help="list model names", description="List model names.")
    p.add_argument("pattern", nargs="?", help="shell-style pattern (e.g. 'starnet_*'); plain text matches a substring")
    p.add_argument("--timm", action="store_true", help="also list timm's models (they build by name too)")
    p.add_argument(
        "--stats",
        action="store_true",
        help="a table of params, MACs (conv/linear; fvcore's total with norms and pooling), element-wise "
        "products at the model's input size, beside the paper's figures",
    )
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("data", parents=[common], help="datasets: list, info", description="Datasets.")
    data_sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    q = data_sub.add_parser("list", parents=[common], help="list dataset names")
    q.set_defaults(func=_cmd_data_list)
    q = data_sub.add_parser(
        "info",
        parents=[common],
        help="counts, shape, classes and location of a dataset",
        description="Counts per split and per class, item shape, classes, and where the files were found.",
    )
    q.add_argument("name", help="dataset name (see 'starquad data list')")
    q.add_argument("--data-dir", help="folder with the dataset files (default: $STARQUAD_DATA, then system paths)")
    q.set_defaults(func=_cmd_data_info)

    _add_train_parsers(sub, common)

    _add_bench_parsers(sub, common)

    from starquad.deploy.config import ExportConfig

    p = sub.add_parser(
        "export", parents=[common], help="export a model to ONNX, an AOTInductor package (.pt2) or int8, verified",
        description="Export MODEL in its inference form (re-parameterised, BatchNorm, layer scales and LayerNorm "
        "affines folded) to one ONNX file with torch's exporter, run it in onnxruntime and compare with PyTorch; or, "
        "with --format pt2, compile it ahead of time with AOTInductor (torch.export, frozen weights) into one .pt2 "
        "package that runs with PyTorch alone (torch._inductor.aoti_load_package(FILE)(x)); or, with --int8, "
        "quantize it. Prints the largest absolute difference and fails (nothing written) above --atol.")  # fmt: skip
    ExportConfig.add_arguments(p)
    p.set_defaults(func=_cmd_export)

    from starquad.analysis.config import ReportConfig

    p = sub.add_parser(
        "reproduce", parents=[common], help="test the papers' claims at small scale and write a report",
        description="Run the report sections and write OUT/report.md, OUT/results.json and PNG figures. A section "
        "that fails is reported as failed; the others still run. Stop it any time: run the same command again "
        "and it continues with the same numbers.")  # fmt: skip
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="preset", action="store_const", const="quick", help="the quick preset "
                      "(default; what 'make reproduce' runs)")  # fmt: skip
    mode.add_argument("--full", dest="preset", action="store_const", const="full", help="the full preset: more "
                      "seeds, images and rounds")  # fmt: skip
    ReportConfig.add_arguments(p, exclude=("full",))
    p.set_defaults(func=_cmd_reproduce)
    _add_nas_parsers(sub, common)
    return parser


def _add_quick_flag(parser, options, note: str = "") -> None:
    """``--quick``: the options' quick preset, its values named in the help."""
    values = ", ".join(f"{k} {v}" for k, v in options.PRESETS["quick"].items())
    parser.add_argument("--quick", action="store_true", help=f"the quick preset ({values}; the flags given override "
                        f"it){': ' + note if note else ''}")  # fmt: skip


def _add_nas_search_parser(nas, common) -> None:
    from starquad.nas.config import SearchConfig

    q = nas.add_parser(
        "search", parents=[common], help="search a space under a latency budget",
        description="Train a supernet of the space (weights warm-up, then ProxylessNAS architecture steps with the "
        "unit-free latency penalty CE·max(1, E[T]/budget)^β), derive the most likely architecture under the budget "
        "(exact knapsack), measure it, and tighten until the measured latency is within [low·budget, budget]. "
        "Writes OUT/args.json, alpha_history.csv, alpha.png, arch.json, result.json.")  # fmt: skip
    _add_quick_flag(q, SearchConfig, "about a minute, +1 min to build a quick latency table when there is none")
    SearchConfig.add_arguments(q)
    q.set_defaults(func=_cmd_nas_search)
    from starquad.train.config import add_train_arguments

    q = nas.add_parser(
        "retrain", parents=[common], help="train a search's architecture from scratch",
        description="Train RUN/arch.json from scratch with the training engine (every 'starquad train' option; "
        "-c reads a recipe: a YAML file, or one that ships with starquad by name, e.g. fashion_mnist), then time it "
        "the way the search did. Writes "
        "RUN/retrain/ (a normal training run) and RUN/retrain/nas_result.json (top-1, params, MACs, predicted and "
        "measured latency, budget).")  # fmt: skip
    q.add_argument("--run", required=True, help="a search's run directory (starquad nas search --out)")
    q.add_argument("-c", "--config", help="YAML training recipe")
    add_train_arguments(q, only=tuple(f for f in _train_fields() if f != "model"))
    q.set_defaults(func=_cmd_nas_retrain)
    _add_nas_compare_parser(nas, common)


def _add_nas_compare_parser(nas, common) -> None:
    from starquad.analysis.config import CompareConfig

    q = nas.add_parser(
        "compare", parents=[common], help="Table III on this machine: searched networks at equal measured latency",
        description="Search, derive, measure and retrain every arm (quadranet, mbconv, interaction, random, "
        "no_latency) at budgets set by percentiles of quadranet's latency, for each seed; trials are kept as they "
        "finish (run it again to resume). Writes OUT/table.md, summary.json, top1_vs_latency.png, "
        "trials/.")  # fmt: skip
    _add_quick_flag(q, CompareConfig)
    CompareConfig.add_arguments(q)
    q.set_defaults(func=_cmd_nas_compare)


def _cmd_nas_compare(args) -> None:
    from starquad.analysis.config import CompareConfig
    from starquad.analysis.nas_compare import compare
    from starquad.nas.config import QUICK_SEARCH

    cfg = CompareConfig.preset("quick" if args.quick else None, source="nas compare", **CompareConfig.given(args))
    recipe = None if (cfg.recipe or "none").lower() == "none" else cfg.recipe
    summary = compare(cfg.out, cfg.arms, cfg.percentiles, cfg.seeds, search=dict(QUICK_SEARCH) if cfg.quick_search
                      else {}, train=dict(epochs=cfg.epochs, subset=cfg.train_subset), recipe=recipe,
                      train_threads=cfg.train_threads if cfg.train_threads is not None else (1 if cfg.ray else None),
                      ray_workers=cfg.workers if cfg.ray else None, log=logging.getLogger("starquad.nas").info)
    print(summary["table"])
    print(f"{summary['trials']} trials in {summary['seconds'] / 60:.1f} min; {cfg.out}/table.md")


def _train_fields() -> list[str]:
    from starquad.train.config import TrainConfig

    return [f.name for f in dataclasses.fields(TrainConfig)]


def _cmd_nas_retrain(args) -> None:
    import json as _json

    from starquad.nas.search import retrain
    from starquad.train.config import asked_on_command_line, config_from_args

    args.model = None
    cfg = config_from_args(args, args.config)
    result = retrain(args.run, cfg, log=logging.getLogger("starquad.nas").info,
                     asked=asked_on_command_line(args, args.config))  # fmt: skip
    print(_json.dumps(result, indent=1))


def _cmd_nas_search(args) -> None:
    import json as _json

    from starquad.nas.config import SearchConfig
    from starquad.nas.search import search

    cfg = SearchConfig.preset("quick" if args.quick else None, **SearchConfig.given(args))
    result = search(cfg, log=logging.getLogger("starquad.nas").info)
    keys = ["space", "budget_ms", "predicted_ms", "measured_ms", "budget_met", "in_band", "skips", "ops",
            "one_shot_top1", "seconds"]  # fmt: skip
    print(_json.dumps({k: result[k] for k in keys}, indent=1))


def _add_nas_parsers(sub, common) -> None:
    from starquad.nas.config import TableConfig, ValidationConfig

    p = sub.add_parser("nas", parents=[common], help="hardware-aware architecture search and its latency model",
                       description="Hardware-aware architecture search (QuadraNet §NAS): the latency model of this "
                       "machine (an op table, a fitted correction, its validation) and the search under a latency "
                       "budget that holds when measured.")  # fmt: skip
    nas = p.add_subparsers(dest="nas_command", metavar="COMMAND", required=True)
    _add_nas_search_parser(nas, common)
    lat = nas.add_parser(
        "latency", parents=[common], help="build or validate a latency table",
        description="Latency tables: every op of a search space timed alone in a runtime, corrected by a fit on "
        "whole networks; validated on networks not used for fitting.")  # fmt: skip
    commands = lat.add_subparsers(dest="latency_command", metavar="COMMAND", required=True)
    q = commands.add_parser(
        "build", parents=[common], help="time a space's ops and fit the correction",
        description="Time every (op, input shape) of a search space and the fixed parts, then fit the correction "
        "on random whole networks. Writes JSON (default: a per-machine cache folder).")  # fmt: skip
    _add_quick_flag(q, TableConfig, "a rough table in about a minute")
    TableConfig.add_arguments(q)
    q.set_defaults(func=_cmd_nas_latency_build)
    q = commands.add_parser(
        "validate", parents=[common], help="accuracy of a table on held-out networks",
        description="Measure random networks not used for fitting (half uniform, half deep and wide), each twice, "
        "and report the share within ±5%% and ±10%%, MAPE, Spearman and Kendall, the test–retest Spearman, "
        "and the plain sum beside it.")  # fmt: skip
    ValidationConfig.add_arguments(q)
    q.set_defaults(func=_cmd_nas_latency_validate)


EVAL_OPTIONS = ("model", "model_kwargs", "data", "data_dir", "img_size", "eval_subset", "batch_size", "crop_pct",
                "interpolation", "tta_flip", "channels_last", "amp", "threads", "workers")  # fmt: skip


def _add_train_parsers(sub, common) -> None:
    from starquad.train.config import add_train_arguments

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train a model",
        description="Train a model. -c/--config reads a YAML recipe (keys as the flags, '-' or '_'); flags given on "
        "the command line override it. Writes OUTPUT/args.yaml, summary.csv (one row per epoch), "
        "last.safetensors + last.state.pt (atomic; --resume OUTPUT continues after the last completed epoch) and "
        "best.safetensors. Under 'torchrun --nproc_per_node=N' the same command trains with DDP.",
    )
    p.add_argument("-c", "--config", help="YAML recipe (e.g. fashion_mnist, one that ships with starquad)")
    add_train_arguments(p)
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser(
        "eval",
        parents=[common],
        help="evaluate a checkpoint",
        description="Evaluate weights (safetensors, or a weights-only torch file) on a dataset's test split.",
    )
    p.add_argument("--checkpoint", required=True, help="weights file, e.g. runs/train/best.safetensors")
    add_train_arguments(p, only=EVAL_OPTIONS)
    p.set_defaults(func=_cmd_eval)


def _cmd_train(args) -> None:
    from starquad.train import train
    from starquad.train.config import asked_on_command_line, config_from_args

    result = train(config_from_args(args, args.config), asked=asked_on_command_line(args, args.config))
    print(f"best top-1 {result['best_top1']:.2f}%; run directory: {result['output']}")


def _cmd_eval(args) -> None:
    from starquad.errors import ConfigError
    from starquad.train.config import config_from_args
    from starquad.train.eval import evaluate_checkpoint

    if args.model is None:
        raise ConfigError("name the model the checkpoint belongs to: starquad eval --model NAME --checkpoint FILE")
    cfg = config_from_args(args)
    m = evaluate_checkpoint(cfg, args.checkpoint)
    print(
        f"{cfg.model} on {cfg.data} test ({m['samples']} images): top-1 {m['top1']:.2f}%, top-5 {m['top5']:.2f}%, "
        f"loss {m['loss']:.4f}"
    )


def _cmd_models(args) -> None:
    from starquad.models import list_models

    names = list_models(args.pattern, include_timm=args.timm)
    if not names:
        where = "starquad or timm" if args.timm else "starquad (add --timm to search timm's too)"
        print(f"no {where} model matches '{args.pattern or '*'}'")
        return
    if not args.stats:
        print("\n".join(names))
        return
    from starquad.bench import markdown_table, model_stats

    columns = ["model", "input", "params_m", "paper_params_m", "params_diff_pct", "macs_m", "fvcore_macs_m",
               "paper_macs_m", "macs_diff_pct", "elementwise_mul_m", "paper_top1"]  # fmt: skip
    print(markdown_table([model_stats(n.removeprefix("timm:")) for n in names], columns))


def _cmd_data_list(args) -> None:
    from starquad.data import dataset_spec, list_datasets

    for name in list_datasets():
        print(f"{name:<14} {dataset_spec(name).description}")


def _cmd_data_info(args) -> None:
    from starquad.data import dataset_info, format_dataset_info

    print(format_dataset_info(dataset_info(args.name, data_dir=args.data_dir)))


# bench SUBCOMMAND -> (its options, help, description); every flag comes from the options' fields
BENCH_COMMANDS = {
    "latency": ("LatencyConfig", "inference latency with eager / compile / aoti / onnxruntime / openvino",
                "Inference latency of each model on each backend: warm-up, then timed runs; median (or mean), p10, "
                "p90, params, MACs (conv/linear), published ImageNet top-1."),
    "throughput": ("ThroughputConfig", "inference and training samples/s at a batch",
                   "Samples per second in PyTorch eager: inference (re-parameterised) and one training step "
                   "(forward, backward, SGD update)."),
    "memory": ("MemoryConfig", "activation bytes saved for backward, peak RSS of a training step",
               "Exact bytes of activations that one training-mode forward pass saves for backward (saved-tensor "
               "hooks; storages counted once, parameters excluded), the peak-RSS rise of one forward+backward step, "
               "CUDA max allocated on a GPU, and ratios of saved bytes to the first model."),
    "flops": ("FlopsConfig", "params and FLOPs beside the papers' figures",
              "Params, conv/linear MACs, fvcore's total and element-wise products at the model's input size, beside "
              "the paper's figures, of the inference form that 'bench latency' times."),
    "blocks": ("BlockStudyConfig", "memory and speed of stacks of each block type (QuadraNet Table II)",
               "For each block type and width: exact activation bytes saved for backward per block, the peak-RSS "
               "rise of one training step, forward (no_grad) and training-step (forward+backward) medians, and "
               "ratios to HorBlock (order 3). All block types share the same norms, MLP and layer scales."),
}  # fmt: skip


def _add_bench_parsers(sub, common) -> None:
    from starquad.bench import config

    p = sub.add_parser("bench", parents=[common], help="benchmarks: latency, throughput, memory, flops, blocks",
                       description="Benchmarks of any models, ours or timm's; Markdown tables on stdout.")  # fmt: skip
    bench_sub = p.add_subparsers(dest="bench_command", metavar="SUBCOMMAND", required=True)
    for name, (cls_name, help_text, description) in BENCH_COMMANDS.items():
        q = bench_sub.add_parser(name, parents=[common], help=help_text, description=description)
        if name != "blocks":
            q.add_argument("models", nargs="*", metavar="MODEL", help="model names or shell patterns, ours or "
                           "timm's ('timm:NAME' forces timm's; 'starnet_s[1-4]')")  # fmt: skip
            q.add_argument("--model", "--models", dest="model_opt", nargs="+", metavar="MODEL", default=[],
                           help="more models (same as the positional names)")  # fmt: skip
            q.add_argument("--csv", metavar="FILE", help="also write the rows as CSV")
        q.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
        if name == "latency":
            q.add_argument("--protocol", choices=["default", "paper"], default="default", help="paper: the StarNet "
                           "paper's method (onnxruntime, batch 1, 50 warm-up, mean of 500)")  # fmt: skip
            q.add_argument("--plot", metavar="FILE.png", help="draw top-1 against latency (like StarNet's Fig. 4)")
        cls = getattr(config, cls_name)
        cls.add_arguments(q)
        q.set_defaults(func=_cmd_bench, options=cls)


def _cmd_bench(args) -> None:
    preset = "paper" if getattr(args, "protocol", "default") == "paper" else None
    cfg = args.options.preset(preset, source=f"bench {args.bench_command}", **args.options.given(args))
    {"latency": _bench_latency, "throughput": _bench_throughput, "memory": _bench_memory, "flops": _bench_flops,
     "blocks": _bench_blocks}[args.bench_command](args, cfg)  # fmt: skip


def _bench_blocks(args, cfg) -> None:
    import json

    from starquad.bench.blocks import format_block_study, run_block_study
    from starquad.io import atomic_write

    rows = run_block_study(cfg)
    print(format_block_study(rows, cfg))
    if args.json:
        atomic_write(args.json, json.dumps(rows, indent=2))


def _bench_models(args) -> list[str]:
    from starquad.bench.suite import expand_models
    from starquad.errors import ConfigError

    given = list(args.models) + list(args.model_opt)
    if not given:
        raise ConfigError("name at least one model, e.g. 'starquad bench latency starnet_s1 mobileone_s0'")
    return expand_models(given)


def _emit_rows(args, rows, columns=None) -> None:
    import json

    from starquad.bench import markdown_table
    from starquad.bench.suite import rows_to_csv
    from starquad.io import atomic_write

    print(markdown_table(rows, columns))
    if args.json:
        atomic_write(args.json, json.dumps(rows, indent=2))
    if args.csv:
        atomic_write(args.csv, rows_to_csv(rows))


def _bench_latency(args, cfg) -> None:
    from starquad.bench.suite import bench_latency

    rows = bench_latency(_bench_models(args), cfg)
    columns = ["model", "backend", "batch", "input", "ms", "p10_ms", "p90_ms", "params_m", "macs_m", "top1"]
    if cfg.roofline:
        columns += ["gflops", "roofline_pct"]
    print(f"latency: {cfg.statistic} of {cfg.runs} runs after {cfg.warmup} warm-up, {cfg.threads} thread(s), "
          f"{cfg.precision}{'' if cfg.reparameterize else ', not re-parameterised'}")  # fmt: skip
    if cfg.roofline:
        peaks = {r["backend"]: r["peak_gflops"] for r in rows}
        print("GEMM peak (square fp32 matmul, same backend and threads): "
              + ", ".join(f"{b} {p:.1f} GFLOP/s" for b, p in peaks.items()))  # fmt: skip
    _emit_rows(args, rows, columns)
    if args.plot:
        from starquad.bench.plot import plot_accuracy_latency

        n = plot_accuracy_latency(rows, args.plot)
        print(f"plot: {args.plot} ({n} models with a published top-1)")


def _bench_throughput(args, cfg) -> None:
    from starquad.bench.suite import bench_throughput

    _emit_rows(args, bench_throughput(_bench_models(args), **dataclasses.asdict(cfg)))


def _bench_memory(args, cfg) -> None:
    from starquad.bench.suite import bench_memory

    _emit_rows(args, bench_memory(_bench_models(args), **dataclasses.asdict(cfg)))


def _bench_flops(args, cfg) -> None:
    from starquad.bench.suite import bench_flops

    columns = ["model", "form", "input", "params_m", "paper_params_m", "macs_m", "fvcore_macs_m", "paper_macs_m",
               "macs_diff_pct", "elementwise_mul_m", "paper_top1"]  # fmt: skip
    _emit_rows(args, bench_flops(_bench_models(args), **dataclasses.asdict(cfg)), columns)


def _cmd_export(args) -> None:
    from starquad.bench.suite import input_size_of
    from starquad.deploy.config import ExportConfig
    from starquad.models import create_model, load_checkpoint

    cfg = ExportConfig.from_dict(ExportConfig.given(args), source="export")
    kwargs = {k: v for k, v in (("num_classes", cfg.num_classes), ("in_chans", cfg.in_chans)) if v is not None}
    model = create_model(cfg.model, **cfg.model_kwargs, **kwargs)
    if cfg.checkpoint:
        load_checkpoint(model, cfg.checkpoint)
    size = input_size_of(cfg.model, cfg.img_size)
    if cfg.in_chans is not None:
        size = (cfg.in_chans, *size[1:])
    if cfg.int8:
        return _export_int8(cfg, model, size)
    if cfg.output_format == "pt2":
        from starquad.deploy import export_pt2

        result = export_pt2(model, cfg.output, size, prepare=cfg.fold, atol=cfg.atol)
    else:
        from starquad.deploy import export_onnx

        result = export_onnx(model, cfg.output, size, dynamic_batch=cfg.dynamic_batch, prepare=cfg.fold,
                             atol=cfg.atol)  # fmt: skip
    runtime = "AOTInductor package" if cfg.output_format == "pt2" else "onnxruntime"
    print(f"{result.path}: {result.size_bytes / 2**20:.2f} MiB, input 1×{'×'.join(map(str, size))}"
          f"{' (dynamic batch)' if result.dynamic_batch else ''}; {runtime} vs PyTorch max abs diff "
          f"{result.max_abs_diff:.3g} (<= {result.atol:g}: ok)"
          + ("" if result.probe_max_abs_diff is None else
             f"; with layer scales 0.5–1 {result.probe_max_abs_diff:.3g}"))  # fmt: skip


def _export_int8(cfg, model, size) -> None:
    from starquad.deploy.int8 import export_int8

    r = export_int8(model, cfg.output, size, calib=cfg.calib, calib_n=cfg.calib_n, runtime=cfg.runtime,
                    method=cfg.calib_method, max_drop=cfg.max_drop, eval_n=cfg.eval_n, data_dir=cfg.data_dir,
                    resize=cfg.calib_resize, log=print)  # fmt: skip
    kept = [p.module or p.node for p in r.products if p.kept_float]
    print(f"{r.path}: int8 for {r.runtime} ({r.method}, {r.calib_n} {r.calib} images), {len(r.products)} products, "
          f"{len(kept)} kept in float{' (' + ', '.join(kept) + ')' if kept else ''}")  # fmt: skip
    print(f"top-1 on {r.eval_n} {r.calib} test images: float {r.top1_float:.2f}%, int8 {r.top1_int8:.2f}% "
          f"(drop {r.drop:+.2f} points <= {cfg.max_drop:g}: ok; every product in int8: {r.drop_all_quantized:+.2f})")
    print("wrote " + ", ".join(str(f) for f in r.files))


def _cmd_nas_latency_build(args) -> None:
    from starquad.nas.config import TableConfig
    from starquad.nas.latency import build_table, default_table_path
    from starquad.nas.space import get_space

    cfg = TableConfig.preset("quick" if args.quick else None, source="nas latency build", **TableConfig.given(args))
    protocol = cfg.protocol()
    table = build_table(get_space(cfg.space), protocol, fit_archs=cfg.fit, seed=cfg.seed)
    out = cfg.out or default_table_path(cfg.space, protocol)
    table.save(out)
    print(f"{out}: {len(table.entries)} entries; correction {table.overhead_ms:.4f} ms + {table.scale:.3f} × sum + "
          f"{table.per_op_ms:.4f} ms × ops; built in {table.fit['build_seconds']:.0f} s")  # fmt: skip


def _cmd_nas_latency_validate(args) -> None:
    import json

    from starquad.io import atomic_write
    from starquad.nas.config import ValidationConfig
    from starquad.nas.latency import LatencyTable, plot_validation, validate_table

    cfg = ValidationConfig.from_dict(ValidationConfig.given(args), source="nas latency validate")
    table = LatencyTable.load(cfg.table)
    other = LatencyTable.load(cfg.correction_from) if cfg.correction_from else None
    result = validate_table(table, n=cfg.n, seed=cfg.seed, correction_from=other)
    keys = ["space", "n", "within_5pct", "within_10pct", "mape", "spearman", "kendall", "retest_spearman",
            "retest_mape", "naive", "ood"]  # fmt: skip
    shown = {k: result[k] for k in keys if k in result}
    if "ood" in shown:
        shown["ood"] = {k: v for k, v in shown["ood"].items() if k != "predicted_ms"}
    print(json.dumps(shown, indent=1))
    if cfg.json:
        atomic_write(cfg.json, json.dumps(result, indent=1) + "\n")
    if cfg.plot:
        plot_validation(result, cfg.plot)


def _cmd_reproduce(args) -> None:
    from starquad.analysis import list_sections, run_reproduce
    from starquad.analysis.config import ReportConfig
    from starquad.analysis.report import full_plan, quick_plan
    from starquad.runtime import torch_threads
    from starquad.stats import SeedPlan

    cfg = ReportConfig.preset(args.preset, source="reproduce", **ReportConfig.given(args))
    if cfg.list_sections:
        print("\n".join(list_sections()))
        return
    default, _ = full_plan() if cfg.full else quick_plan()
    pilot = default.pilot if cfg.pilot_seeds is None else cfg.pilot_seeds
    most = max(default.max_seeds, pilot) if cfg.max_seeds is None else cfg.max_seeds
    plan = SeedPlan(pilot=pilot, max_seeds=most, step=pilot)  # validates: one line naming the bad value
    with torch_threads(cfg.threads):
        results = run_reproduce(cfg.out, sections=cfg.sections, full=cfg.full, seed=cfg.seed, data_dir=cfg.data_dir,
                                command=shlex.join(["starquad", *sys.argv[1:]]), plan=plan, max_runs=cfg.max_runs,
                                top1_delta=cfg.top1_delta, workers=cfg.workers, ray_address=cfg.ray,
                                run_threads=cfg.run_threads)  # fmt: skip
    failed = [k for k, v in results.items() if isinstance(v, dict) and v.get("status") == "failed"]
    print(f"report: {cfg.out}/report.md  results: {cfg.out}/results.json")
    if failed:
        raise SystemExit(f"starquad: error: {len(failed)} section(s) failed: {', '.join(failed)} (see the report)")


class _StderrHandler(logging.StreamHandler):
    """Log records to whatever ``sys.stderr`` is at the time (results go to stdout, progress to stderr)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property decides
        pass


def _configure_logging(verbose: int) -> None:
    """The library logs through ``logging.getLogger('starquad.*')``; the CLI shows INFO (DEBUG with -v)."""
    logger = logging.getLogger("starquad")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s" if not verbose else "%(asctime)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    _configure_logging(getattr(args, "verbose", 0))
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("starquad: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        from starquad.errors import StarquadError

        msg = (
            str(e) if isinstance(e, StarquadError) else f"{type(e).__name__}: {e} (run with --debug for the traceback)"
        )
        print(f"starquad: error: {' '.join(msg.split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
