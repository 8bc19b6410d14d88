import json
import math

import numpy as np
import pytest

from starquad.analysis import fmnist, list_sections, run_reproduce
from starquad.analysis.implicit import monomial_count, star_feature_rank
from starquad.analysis.moons import _moons, _predict, train_demonet_2d


def test_every_issue_section_is_registered():
    assert set(list_sections()) >= {"implicit", "moons", "demonet", "ablations", "quadranet", "latency", "nas", "xor",
                                    "quadratic_gain", "kernel_size", "placement", "star_latency", "quantization"}


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8])
def test_star_rank_equals_the_monomial_count(d):
    assert monomial_count(d) == (d + 2) * (d + 1) // 2
    assert star_feature_rank(d, 1, "star") == monomial_count(d)
    assert star_feature_rank(d, 1, "sum") == d + 1  # a sum of linear maps stays linear


def test_stacked_star_layers_reach_degree_four():
    assert monomial_count(3, 2) == math.comb(7, 3) == 35
    assert star_feature_rank(3, 2, "star") == 35


def test_moons_training_is_deterministic_and_star_fits():
    x, y = _moons(0)
    a, b = train_demonet_2d("star", x, y, seed=1), train_demonet_2d("star", x, y, seed=1)
    pa, pb = _predict(a, x), _predict(b, x)
    assert np.array_equal(pa, pb)
    assert (pa == y).mean() >= 0.85  # noise 0.4 moons: the paper reports ≈95% for star


@pytest.fixture
def tiny_budget(monkeypatch):
    from starquad.analysis import report
    from starquad.stats import SeedPlan

    tiny = fmnist.FmnistBudget(subset=300, eval_subset=200, epochs=1, seeds=2, batch_size=64)
    monkeypatch.setattr(fmnist, "QUICK", tiny)
    monkeypatch.setattr(report, "QUICK_PLAN", SeedPlan(pilot=2, max_seeds=2, step=1))  # two seeds, one look


@pytest.mark.slow
def test_training_sections_end_to_end(tmp_path, tiny_budget):
    results = run_reproduce(tmp_path, sections=["demonet", "ablations"], log=lambda m: None, workers=1)
    demo, abl = results["demonet"], results["ablations"]
    assert demo["status"] == "ok", demo.get("error")
    assert abl["status"] == "ok", abl.get("error")
    assert [r["width"] for r in demo["width_sweep"]] == [16, 32, 64]  # the quick widths
    assert set(demo["activation_free_drop"]) == {"star", "sum"}
    assert all(len(run["top1"]) == 2 and 0 <= run["mean"] <= 100 for run in demo["runs"].values())
    assert set(abl["fusion_per_stage"]) == {"sum,sum,sum,sum", "sum,sum,star,star", "star,star,star,star"}
    # all-star and activation-on-one-branch are the same network: trained once, reported twice
    assert abl["fusion_per_stage"]["star,star,star,star"]["top1"] == abl["act_placement"]["one"]["top1"]
    report = (tmp_path / "report.md").read_text()
    assert "paper S4" in report and "(demonet_width.png)" in report and "**Claims:**" in report
    # the header says where and from what it ran: the CPU by name, the commit, and the total wall time
    from starquad.runtime import cpu_model

    meta = results["_meta"]
    assert meta["machine"].startswith(cpu_model()) and meta["commit"]
    assert f"Machine: {meta['machine']}" in report and f"Commit: {meta['commit']}" in report
    assert "| all | |" in report


def test_same_seed_same_numbers(tmp_path, monkeypatch):
    tiny = fmnist.FmnistBudget(subset=200, eval_subset=100, epochs=1, seeds=1, batch_size=50)
    from starquad.analysis.report import SectionContext

    ctx = SectionContext(out_dir=tmp_path)
    kwargs = {"stem_stride": 1, "stem_chs": 16}
    a = fmnist.fmnist_top1(ctx, "starnet_s050", kwargs, 3, tiny)
    b = fmnist.fmnist_top1(ctx, "starnet_s050", kwargs, 3, tiny)
    assert a == b and 0 <= a <= 100


@pytest.mark.slow
def test_quadranet_and_latency_sections_end_to_end(tmp_path, tiny_budget, monkeypatch):
    from starquad.analysis import latency, quadranet

    small = dict(quadranet.BLOCK_STUDY_QUICK, channels=(32,), batch=1, size=14, depth=1, rounds=1, measure_rss=False)
    monkeypatch.setattr(quadranet, "BLOCK_STUDY_QUICK", small)
    monkeypatch.setattr(latency, "LATENCY_MODELS", ("starnet_s050", "mobileone_s0"))
    results = run_reproduce(tmp_path, sections=["quadranet", "latency"], log=lambda m: None, workers=1)
    quad, lat = results["quadranet"], results["latency"]
    assert quad["status"] == "ok", quad.get("error")
    assert lat["status"] == "ok", lat.get("error")
    assert set(quad["top1"]) == {"quadranet_t25", "hornet_t"} and quad["memory_saving_vs_hor_pct"] > 0
    assert [r["model"] for r in lat["rows"]] == ["starnet_s050", "mobileone_s0"]
    assert lat["rows"][0]["paper_cpu_ms"] == 1.3 and lat["rows"][1]["paper_cpu_ms"] == 2.2
    assert (tmp_path / "latency_accuracy_vs_latency.png").stat().st_size > 1000


def test_xor_one_quadratic_neuron_separates_what_a_perceptron_cannot(tmp_path):
    results = run_reproduce(tmp_path, sections=["xor"], log=lambda m: None, workers=1)["xor"]
    assert results["status"] == "ok", results.get("error")
    acc = results["mean_test_acc"]
    assert acc["quadratic neuron"] >= 95 and acc["MLP 2-10-1"] >= 95 and acc["perceptron"] <= 70
    assert results["params"] == {"quadratic neuron": 9, "perceptron": 3, "MLP 2-10-1": 41}
    assert results["claims"][0]["verdict"] == "held"
    assert (tmp_path / "xor_boundaries.png").stat().st_size > 10_000


@pytest.mark.slow
def test_quadratic_sections_share_runs_and_report_verdicts(tmp_path, tiny_budget):
    results = run_reproduce(tmp_path, sections=["quadratic_gain", "kernel_size", "placement"], log=lambda m: None,
                            workers=1)  # fmt: skip
    for name in ("quadratic_gain", "kernel_size", "placement"):
        assert results[name]["status"] == "ok", results[name].get("error")
        assert results[name]["claims"] and all(c["n"] == 2 for c in results[name]["claims"])
    gain, kernels, place = results["quadratic_gain"], results["kernel_size"], results["placement"]
    base = place["runs"]["spatial only"]["top1"]
    # the base QuadraNet is one network: trained once per seed, the same numbers in all three sections
    assert kernels["runs"]["7"]["top1"] == base
    assert next(r for r in gain["rows"] if r["value"] == 16)["runs"]["quadratic"]["top1"] == base
    variants = {"w8q", "w8l", "w16q", "w16l", "d1111q", "d1111l", "k3", "k9", "channel", "both"}  # kernels 3, 7, 9
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2 * len(variants)  # 2 seeds each, nothing twice
    # quadratic channel mixers cost far more parameters than the quadratic spatial mixer
    lin = place["runs"]["linear (none)"]["params_m"]
    assert place["runs"]["spatial only"]["params_m"] < 1.2 * lin < place["runs"]["channel only"]["params_m"]
    assert "**Verdicts**" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_an_interrupted_report_resumes_with_the_same_numbers(tmp_path, tiny_budget, monkeypatch):
    """Kill a section in its third training; run it again: the two finished trainings are kept, the rest
    trained, and the numbers equal those of a run that was never interrupted."""
    import starquad.train as train_pkg

    real_train, calls, interrupted = train_pkg.train, [], []

    def train(cfg, *args, **kwargs):
        calls.append(cfg.model_kwargs)
        if len(calls) == 3 and not interrupted:
            interrupted.append(cfg.model_kwargs)
            raise KeyboardInterrupt  # the user's Ctrl-C, mid-section (once)
        return real_train(cfg, *args, **kwargs)

    monkeypatch.setattr(train_pkg, "train", train)
    with pytest.raises(KeyboardInterrupt):
        run_reproduce(tmp_path / "cut", sections=["placement"], log=lambda m: None, workers=1)
    assert len(list((tmp_path / "cut" / "runs").glob("*.json"))) == 2
    calls.clear()
    resumed = run_reproduce(tmp_path / "cut", sections=["placement"], log=lambda m: None, workers=1)["placement"]
    assert resumed["status"] == "ok", resumed.get("error")
    assert len(calls) == 8 - 2  # 4 variants × 2 seeds, less the 2 kept (the interrupted one is trained again)
    kept = [json.loads(p.read_text())["result"]["seconds"] for p in sorted((tmp_path / "cut" / "runs").glob("*.json"))]
    assert 0 < resumed["kept_seconds"] < sum(kept)  # the two read back count; the six trained now are in "seconds"
    assert "| kept (s) |" in (tmp_path / "cut" / "report.md").read_text()
    monkeypatch.setattr(train_pkg, "train", real_train)
    whole = run_reproduce(tmp_path / "whole", sections=["placement"], log=lambda m: None, workers=1)["placement"]
    assert whole["kept_seconds"] == 0
    assert {k: v["top1"] for k, v in resumed["runs"].items()} == {k: v["top1"] for k, v in whole["runs"].items()}


def test_a_damaged_kept_run_is_trained_again(tmp_path, monkeypatch):
    from starquad.analysis.report import SectionContext

    tiny = fmnist.FmnistBudget(subset=200, eval_subset=100, epochs=1, seeds=1, batch_size=50)
    ctx = SectionContext(out_dir=tmp_path)
    first = fmnist.fmnist_run(ctx, "starnet_s050", {"stem_stride": 1, "stem_chs": 16}, 0, tiny)
    kept = next((tmp_path / "runs").glob("*.json"))
    again = fmnist.fmnist_run(ctx, "starnet_s050", {"stem_stride": 1, "stem_chs": 16}, 0, tiny)
    assert not first["kept"] and again["kept"] and again["top1"] == first["top1"]
    kept.write_text(kept.read_text()[:40])  # truncated
    redone = fmnist.fmnist_run(ctx, "starnet_s050", {"stem_stride": 1, "stem_chs": 16}, 0, tiny)
    assert not redone["kept"] and redone["top1"] == first["top1"]


@pytest.mark.slow
def test_star_latency_pairs_star_and_sum_on_each_backend(tmp_path, monkeypatch):
    from starquad.analysis import latency

    monkeypatch.setattr(latency, "STAR_LATENCY_MODELS", ("starnet_s050",))
    monkeypatch.setattr(latency, "_available_backends", lambda: (["eager", "onnxruntime"], {"openvino": "skipped"}))
    results = run_reproduce(tmp_path, sections=["star_latency"], log=lambda m: None, workers=1)["star_latency"]
    assert results["status"] == "ok", results.get("error")
    assert [(r["backend"], r["model"]) for r in results["rows"]] == [("eager", "starnet_s050"),
                                                                     ("onnxruntime", "starnet_s050")]
    for r in results["rows"]:
        assert r["star_ms"] > 0 and r["sum_ms"] > 0 and r["star_over_sum"] == r["star_ms"] / r["sum_ms"]
    protocol = results["protocol"]
    assert protocol["paired"] == "visit by visit, blocks"
    assert [c["n"] for c in results["claims"]] == [protocol["rounds"]] * 2  # one pair of medians per round
    assert (tmp_path / "star_latency_ratios.png").stat().st_size > 0
    assert "(star_latency_ratios.png)" in (tmp_path / "report.md").read_text()


def test_the_code_fingerprint_covers_what_trains_and_nothing_else(tmp_path, monkeypatch):
    """Kept runs are keyed by a hash of ops/models/data/train, the C++ extension's source included; the report
    code (analysis) may change without invalidating them."""
    import starquad

    pkg = tmp_path / "starquad"
    for rel, text in {"__init__.py": "", "ops/a.py": "A = 1\n", "ops/csrc/k.cpp": "int k;\n",
                      "analysis/x.py": "X = 1\n"}.items():  # fmt: skip
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    monkeypatch.setattr(starquad, "__file__", str(pkg / "__init__.py"))

    def fingerprint():  # computed once per process normally: clear the cache around each look
        fmnist.code_fingerprint.cache_clear()
        return fmnist.code_fingerprint()

    try:
        first = fingerprint()
        (pkg / "ops/csrc/k.cpp").write_text("int k = 2;\n")
        second = fingerprint()
        (pkg / "analysis/x.py").write_text("X = 2\n")
        assert first != second == fingerprint()
        (pkg / "ops/a.py").write_text("A = 2\n")
        assert fingerprint() != second
    finally:
        fmnist.code_fingerprint.cache_clear()


def test_a_run_kept_with_its_weights_reads_them_back_and_retrains_without_them(tmp_path):
    from starquad.analysis.report import SectionContext
    from starquad.models import create_model, load_checkpoint

    tiny = fmnist.FmnistBudget(subset=200, eval_subset=100, epochs=1, seeds=1, batch_size=50)
    ctx = SectionContext(out_dir=tmp_path)
    kwargs = {"stem_stride": 1, "stem_chs": 16}
    first = fmnist.fmnist_run(ctx, "starnet_s050", kwargs, 0, tiny, keep_weights=True)
    weights = first["weights"]
    load_checkpoint(create_model("starnet_s050", num_classes=10, in_chans=1, **kwargs), weights)  # it fits
    again = fmnist.fmnist_run(ctx, "starnet_s050", kwargs, 0, tiny, keep_weights=True)
    assert again["kept"] and again["weights"] == weights
    data = open(weights, "rb").read()
    (tmp_path / "runs" / weights.rsplit("/", 1)[1]).unlink()
    third = fmnist.fmnist_run(ctx, "starnet_s050", kwargs, 0, tiny, keep_weights=True)
    assert not third["kept"] and third["top1"] == first["top1"] and open(weights, "rb").read() == data


@pytest.mark.slow
def test_quantization_section_end_to_end(tmp_path, tiny_budget, monkeypatch):
    from starquad.analysis import quantization

    monkeypatch.setattr(quantization, "CALIB_N", 64)
    monkeypatch.setattr(quantization, "SELECT_N", 200)
    monkeypatch.setattr(quantization, "EVAL_N", 500)
    results = run_reproduce(tmp_path, sections=["quantization"], log=lambda m: None, workers=1)["quantization"]
    assert results["status"] == "ok", results.get("error")
    nets = results["networks"]
    assert set(nets) == {"StarNet", "QuadraNet", "DemoNet star", "DemoNet sum"}
    assert (nets["StarNet"]["products"], nets["QuadraNet"]["products"], nets["DemoNet sum"]["products"]) == (6, 6, 0)
    for r in nets.values():
        assert len(r["top1_float"]) == len(r["top1_int8"]) == len(r["drop_all_quantized"]) == 2
        assert r["drop"] == pytest.approx([f - q for f, q in zip(r["top1_float"], r["top1_int8"], strict=True)])
        assert r["latency_ratio"] > 0 and r["float_ms"] > 0
    claims = results["claims"]
    assert [c["claim"].split("'")[0] for c in claims] == ["int8 keeps StarNet", "int8 keeps QuadraNet",
                                                          "int8 keeps DemoNet star"]
    assert all(c["expect"] == "similar" and c["n"] == 2 for c in claims)
    assert len(list((tmp_path / "runs").glob("*.safetensors"))) == 8
    assert "| StarNet | 6 |" in (tmp_path / "report.md").read_text()
