"""The bench command: JSON schema and CSV in quick mode, target logic, the measuring helpers.
No wall-clock time is asserted anywhere."""
import json
import math

import pandas as pd
import pytest
import torch

from mosslib.apps import bench, benchreport, timing
from mosslib.apps import cli
from mosslib.model import fast
from mosslib.model.baselines import MODEL_NAMES


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "timing.csv"
    threads = torch.get_num_threads()
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["bench", "--json", "--quick", "--threads", "1", "--no-psnr", "--out", str(out)])
    assert torch.get_num_threads() == threads  # --threads is undone afterwards
    return code, json.loads(buf.getvalue()), out


def test_json_schema(quick_run):
    code, res, _ = quick_run
    assert code == 0
    assert isinstance(res["device"], str) and res["threads"] == 1 and res["quick"] is True
    assert res["ceiling_gflops"]["conv3x3_fp32"] > 0 and res["ceiling_gflops"]["matmul_fp32"] > 0
    rows = {(m["name"], m["variant"]): m for m in res["models"]}
    assert {n for n, _ in rows} == set(MODEL_NAMES)
    assert ("moedn", "fast") in rows and all((n, "fp32") in rows for n in MODEL_NAMES)
    assert rows[("moedn", "fast")]["precision"] == fast.default_precision("cpu")
    for m in res["models"]:
        assert isinstance(m["params"], int) and m["params"] > 0
        for key in ("gflop_256", "ms_256", "ms_512", "gflops_achieved"):
            assert isinstance(m[key], float) and m[key] > 0, (m["name"], key)
        assert m["peak_mb"] >= 0
    assert rows[("prenet", "fp32")]["gflop_256"] == pytest.approx(132.5, rel=0.01)
    assert 0 <= res["memory_share_512"] <= 1
    t = res["train_images_per_s"]
    assert t["quick_fp32"] > 0 and t["cpu_fp32"] > 0 and t["paper_fp32"] > 0
    assert set(res["targets"]) == set(benchreport.TARGETS)
    # the targets are the rows' ratios (not a tautology: recomputed here from the rows)
    ratio = rows[("moedn", "fp32")]["ms_256"] / rows[("prenet", "fp32")]["ms_256"]
    assert res["targets"]["moedn_vs_prenet_256"]["value"] == pytest.approx(ratio)
    assert res["targets"]["moedn_vs_prenet_256"]["pass"] == (ratio <= benchreport.TARGETS["moedn_vs_prenet_256"][2])
    assert res["targets"]["fast_psnr_change_db"]["pass"] is None  # --no-psnr
    assert res["fast_psnr"] is None


def test_csv_reads_in_the_timing_notebook(quick_run):
    from mosslib.measure import tables

    _, res, out = quick_run
    df = pd.read_csv(out, comment="#")
    assert len(df) == len(res["models"])
    assert (df["size"] == res["sizes"][0]).all() and res["sizes"][0] == 32  # quick mode says what it timed
    frame = tables.timing_frame(df)
    assert "moedn" in set(frame["arch"]) and frame["ms"].gt(0).all()
    assert frame["arch"].is_unique  # the fast variant has its own name
    assert out.read_text().startswith("# mosslib bench")


def test_targets_pass_and_fail_logic():
    def model(name, variant, ms, ceil=0.5):
        return {"name": name, "variant": variant, "ms_256": ms, "ms_256_min": ms, "ceiling_fraction": ceil}

    res = {
        "models": [model("moedn", "fp32", 100.0, 0.7), model("moedn", "fast", 30.0), model("prenet", "fp32", 600.0)],
        "train_images_per_s": {"bf16_speedup_quick": 1.2},
        "memory_share_512": 0.02,
        "fast_psnr": {"delta_db": -0.01},
    }
    t = benchreport.evaluate_targets(res)
    assert t["moedn_vs_prenet_256"]["value"] == pytest.approx(1 / 6) and t["moedn_vs_prenet_256"]["pass"]
    assert t["moedn_conv_ceiling"]["pass"]
    assert t["fast_speedup_256"]["value"] == pytest.approx(100 / 30) and t["fast_speedup_256"]["pass"]
    assert t["fast_psnr_change_db"]["value"] == pytest.approx(0.01) and t["fast_psnr_change_db"]["pass"]
    assert t["train_bf16_speedup_quick"]["pass"] is False
    assert t["memory_share_512"]["pass"]
    lines = benchreport.target_lines(t)
    assert sum(line.startswith("PASS") for line in lines) == 5 and sum(line.startswith("FAIL") for line in lines) == 1
    # nothing measured -> SKIP, not FAIL
    empty = benchreport.evaluate_targets({"models": []})
    assert all(v["pass"] is None for v in empty.values())
    assert all(line.startswith("SKIP") for line in benchreport.target_lines(empty))


def test_time_interleaved_counts_calls():
    calls = []
    t = timing.time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up, then rounds of one call each
    assert [len(v) for v in t.values()] == [3, 3]


def test_peak_memory_tracks_live_tensors():
    x = torch.zeros(256, 1024)  # 1 MiB
    one = timing.peak_memory_mb(lambda t: t * 2, x)
    two = timing.peak_memory_mb(lambda t: (t * 2) + (t * 3), x)  # two temporaries alive at once, then the sum
    assert one == pytest.approx(1.0, rel=0.01)
    assert two == pytest.approx(3.0, rel=0.01)
    freed = timing.peak_memory_mb(lambda t: [t * 2 for _ in range(4)][-1], x)  # list keeps all four
    assert freed == pytest.approx(4.0, rel=0.01)


def test_gflop_counts_convolutions():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert timing.gflop(conv, 16) == pytest.approx(2 * 3 * 8 * 9 * 16 * 16 / 1e9)


def test_json_is_strict():
    assert bench._finite({"a": math.inf, "b": [1.0, math.nan], "c": "x"}) == {"a": None, "b": [1.0, None], "c": "x"}


def test_bad_arguments():
    with pytest.raises(SystemExit):
        cli.main(["bench", "--models", "resnet"])
    assert cli.main(["bench", "--repeats", "0", "--quick"]) == 2


def test_ceilings_alone_quick():
    c = timing.ceilings(quick=True, repeats=1)
    assert c["conv3x3_fp32"] == max(c["conv3x3_fp32_nchw"], c["conv3x3_fp32_nhwc"]) > 0
    assert c["matmul_fp32"] > 0


