"""mosslib.measure.tables: paired bootstrap gains, tables beside the paper's (CSV + Markdown), figures."""
import math

import numpy as np
import pandas as pd
import pytest

from mosslib.measure import figures, gains, paper, places, tables


def fake_eval(values: dict, seed: int = 0, ssim_offset: float = 0.0) -> dict:
    """An evaluated()-shaped dict: {group: [psnr per image]} (SSIM derived from PSNR)."""
    per = {g: [{"name": f"{g}{i}", "psnr": float(v), "ssim": min(1.0, v / 40 + ssim_offset)} for i, v in enumerate(vs)]
           for g, vs in values.items()}
    splits = {g: {"n": len(r), "psnr": float(np.mean([x["psnr"] for x in r])), "ssim": 0.0} for g, r in per.items()}
    return {"splits": splits, "per_image": per, "seed": seed, "convention": "rgb", "profile": "smoke"}


def two_groups(shift: float = 0.0, seed: int = 0, noise: float = 0.0) -> dict:
    rng = np.random.default_rng(seed + 100)
    dense = 20 + np.arange(10) * 0.3 + shift + noise * rng.standard_normal(10)
    sparse = 26 + np.arange(10) * 0.2 + shift + noise * rng.standard_normal(10)
    return fake_eval({"dense": dense, "sparse": sparse}, seed)


# -- statistics ------------------------------------------------------------------------------
def test_bootstrap_ci_brackets_the_mean_and_is_reproducible():
    d = np.random.default_rng(0).normal(1.0, 1.0, 40)
    lo, hi = gains.bootstrap_ci(d)
    assert lo < d.mean() < hi
    assert (lo, hi) == gains.bootstrap_ci(d)  # seeded
    # a 95 % interval of the mean is about mean +- 1.96 sd / sqrt(n)
    half = 1.96 * d.std(ddof=1) / math.sqrt(len(d))
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.2)
    # more images, narrower interval
    lo2, hi2 = gains.bootstrap_ci(np.tile(d, 4))
    assert hi2 - lo2 < hi - lo


def test_bootstrap_ci_edge_cases():
    assert gains.bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    assert all(math.isnan(v) for v in gains.bootstrap_ci([]))
    with pytest.raises(ValueError, match="level"):
        gains.bootstrap_ci([1.0, 2.0], level=95)


def test_paired_gain_pairs_by_name_not_by_position():
    a = {"x": 10.0, "y": 20.0, "z": 30.0}
    b = {"z": 31.0, "x": 11.0, "y": 21.0, "extra": 99.0}
    g = gains.paired_gain(a, b)
    assert g.mean == pytest.approx(1.0) and g.n == 3
    assert (g.lo, g.hi) == pytest.approx((1.0, 1.0))
    assert g.text() == "+1.00 [+1.00, +1.00]"
    # an interval of no width tells nothing: never "a real difference"
    assert g.degenerate and not g.significant and "real difference" not in g.sentence("x")
    with pytest.raises(ValueError, match="no test image in common"):
        gains.paired_gain({"a": 1.0}, {"b": 2.0})


def test_noise_is_not_a_gain_but_a_consistent_shift_is():
    base = two_groups(0.0, noise=0.0)
    noisy = two_groups(0.0, seed=3, noise=1.0)  # no true gain, per-image noise
    shifted = two_groups(0.5, seed=3, noise=0.1)  # a real 0.5 dB gain
    g0 = gains.gain_of([base], [noisy], "dense", "psnr")
    g1 = gains.gain_of([base], [shifted], "dense", "psnr")
    assert not g0.significant and g0.lo < 0 < g0.hi
    assert g1.significant and g1.lo > 0.3
    assert "not distinguishable from noise" in g0.sentence("x") and "10 images" in g0.sentence("x")
    assert "excludes zero" in g1.sentence("x")
    tiny = gains.Gain(1e-5, 1e-6, 2e-5, 8)
    assert tiny.significant and "no difference at this precision" in tiny.sentence("x")
    # one seed: the wording says the interval covers test images only, and never calls the gain real
    assert g1.seeds == 1 and "one seed" in g1.sentence("x") and "not training noise" in g1.sentence("x")
    assert not g1.real and "not called a real difference" in g1.sentence("x")


def test_per_image_averages_seeds_and_caps_infinite_psnr():
    e0 = fake_eval({"all": [10.0, math.inf]}, seed=0)
    e1 = fake_eval({"all": [12.0, 30.0]}, seed=1)
    per = gains.per_image([e0, e1], "all", "psnr")
    assert per == {"all0": 11.0, "all1": (100.0 + 30.0) / 2}
    mean, std = gains.split_stats([e0, e1], "all", "psnr")
    assert mean == pytest.approx(np.mean([55.0, 21.0])) and std == pytest.approx(np.std([55.0, 21.0], ddof=1))
    assert math.isnan(gains.split_stats([e1], "all", "psnr")[1])
    # "all" over a dense/sparse evaluation concatenates the groups
    assert len(gains.per_image([two_groups()], "all", "psnr")) == 20
    with pytest.raises(KeyError, match="no test group"):
        gains.per_image([e0], "dense", "psnr")
    with pytest.raises(ValueError, match="unknown metric"):
        gains.per_image([e0], "all", "lpips")


# -- tables -----------------------------------------------------------------------------------
def meta(evals, title="T"):
    return tables.table_meta(title, evals, "embedded data (tiny)", "smoke", notes=["a note"])


def test_table_meta_header_names_profile_data_convention_n_and_seeds():
    evals = [two_groups(seed=0), two_groups(seed=1)]
    m = meta(evals)
    assert m.n_test == {"dense": 10, "sparse": 10} and m.seeds == (0, 1)
    items = dict(m.items())
    assert items["profile"] == "smoke" and items["seeds"] == "2 (0, 1)"
    assert items["convention"].startswith("rgb: ") and "scikit-image" in items["convention"]
    assert items["test images"] == "dense 10, sparse 10"


def test_table1_has_every_paper_row_and_the_books_rows(tmp_path):
    sup = [two_groups(0.0, seed=0), two_groups(0.1, seed=1)]
    moss = [two_groups(1.0, seed=0), two_groups(1.2, seed=1)]
    inputs = two_groups(-2.0)
    inputs["seed"] = None
    t = tables.table1(inputs, sup, moss, meta(moss, "Table 1"))
    f = t.frame
    reported = f[f["source"] == "reported"]
    # Input + 7 supervised + 3 semi-supervised x (D_C, D_C + D_U, gain)
    assert len(reported) == 1 + 7 + 3 * 3
    moss_paper = reported[(reported["method"] == "MOSS (CVPR '21)") & (reported["trained_on"] == "D_C + D_U")]
    assert moss_paper["dense_psnr"].item() == 22.91 and moss_paper["sparse_psnr"].item() == 27.78
    book = f[f["source"] == "this book (smoke)"]
    assert list(book["trained_on"]) == ["-", "D_C", "D_C + D_U", "gain [95 % CI]"]
    gain = book[book["trained_on"] == "gain [95 % CI]"]
    assert gain["dense_psnr"].item() == pytest.approx(1.05)
    assert gain["dense_psnr_ci_lo"].item() > 0.9
    d_cu = book[book["trained_on"] == "D_C + D_U"]
    assert d_cu["dense_psnr_seed_std"].item() == pytest.approx(np.std([1.0, 1.2], ddof=1) , abs=1e-9)

    paths = t.write(tmp_path / "smoke")
    md = paths["md"].read_text()
    assert "(reported)" in md and "**profile**: smoke" in md and "22.91 (reported)" in md
    assert "±" in md and "[+" in md
    head, frame = tables.read_table(paths["csv"])
    assert head["profile"] == "smoke" and head["seeds"] == "2 (0, 1)" and "note" in head
    assert len(frame) == len(f) and frame["dense_psnr"].iloc[0] == paper.TABLE1_INPUT["dense"]


def test_limited_table_rows_gains_and_paper_side(tmp_path):
    results = {}
    for pct in paper.LIMITED_FRACTIONS:
        base = fake_eval({"all": 20 + pct / 50 + np.arange(8) * 0.1})
        results[pct] = {"D_L": [base]}
        if pct < 100:
            results[pct]["D_L + D_U"] = [fake_eval({"all": 20.3 + pct / 50 + np.arange(8) * 0.1})]
    t = tables.limited_table(results, meta(results[10]["D_L"], "Tables 2-3"), "Rain200H", name="table2")
    f = t.frame
    book = f[f["source"].str.startswith("this book")]
    assert list(book["percent"]) == list(paper.LIMITED_FRACTIONS)
    assert book["psnr_gain"].iloc[0] == pytest.approx(0.3) and math.isnan(book["psnr_gain"].iloc[-1])
    reported = f[f["source"].str.startswith("reported")]
    assert len(reported) == 10 and set(reported["source"]) == {"reported (Table 2, Rain200H)"}
    assert reported[(reported["method"] == "MOSS") & (reported["percent"] == 20)]["psnr_dlu"].item() == 26.87
    # another data set: both of the paper's tables shown for reference
    t_both = tables.limited_table(results, meta(results[10]["D_L"]), None, name="table2-3_synthetic")
    assert len(t_both.frame[t_both.frame["source"].str.startswith("reported")]) == 20
    paths = t_both.write(tmp_path)
    assert paths["csv"].name == "table2-3_synthetic.csv" and "Table 3, Rain800" in paths["md"].read_text()
    fig = figures.limited_figure(t)
    assert figures.save_figure(fig, tmp_path / "f.png").stat().st_size > 1000


def test_table4_orders_configs_and_compares_with_full(tmp_path):
    evals = {c: [two_groups(i * 0.2, seed=0)] for i, c in enumerate(paper.TABLE4_ORDER)}
    t = tables.table4(evals, meta(evals["full"], "Table 4"))
    f = t.frame
    assert list(f["config"]) == list(paper.TABLE4_ORDER)
    row = f[f["config"] == "no_tv"].iloc[0]
    assert row["dense_psnr_reported"] == 22.68 and row["sparse_ssim_reported"] == 0.908
    assert row["dense_psnr_vs_full"] == pytest.approx(-0.4)
    assert math.isnan(f[f["config"] == "full"].iloc[0].get("dense_psnr_vs_full", math.nan))
    assert "w/o Skip-Connect" in t.markdown()
    fig = figures.ablation_figure(t)
    assert "dense, this book (smoke)" in [x.get_text() for x in fig.axes[0].get_legend().get_texts()]  # one seed: no bars
    assert figures.save_figure(fig, tmp_path / "a.png").is_file()
    seeded = {c: [two_groups(i * 0.2 + 0.1 * s, seed=s) for s in range(3)] for i, c in enumerate(paper.TABLE4_ORDER)}
    legend = figures.ablation_figure(tables.table4(seeded, meta(seeded["full"], "Table 4"))).axes[0].get_legend()
    assert "dense, this book (smoke, mean ± sd over 3 seeds)" in [x.get_text() for x in legend.get_texts()]


def test_timing_frame_maps_columns_and_rejects_unknown():
    df = pd.DataFrame({"model": ["moedn", "prenet"], "median_ms": [120.0, 600.0], "device": ["cpu", "cpu"]})
    t = tables.timing_frame(df)
    assert list(t.columns) == ["arch", "ms", "device"] and tables.timing_device(t) == "cpu"
    with pytest.raises(ValueError, match="lacks"):
        tables.timing_frame(pd.DataFrame({"model": ["a"], "seconds": [1.0]}))
    tt = tables.timing_table(t, tables.TableMeta("Fig. 8", "smoke", "-", "ms", {}, ()))
    assert list(tt.frame["arch"]) == ["moedn", "prenet"]


def test_timing_side_reads_the_benchmark_header(tmp_path):
    p = tmp_path / "timing.csv"
    p.write_text("# mosslib bench: CPU (2 threads), torch 2, sizes [32, 64], 2 repeats (quick mode)\narch,ms\nmoedn,1\n")
    assert tables.timing_side(p) == 32
    p.write_text("arch,ms\nmoedn,1\n")
    assert tables.timing_side(p) == 256
    t = tables.timing_frame(pd.DataFrame({"arch": ["a"], "ms": [2.0], "ms_min": [1.5]}))
    tt = tables.timing_table(t, tables.TableMeta("Fig. 8", "smoke", "-", "ms", {}, ()), side=32)
    assert "ms / 32x32 image (median)" in tt.display.columns and "fastest run (ms)" in tt.display.columns
    assert "test images" not in dict(tt.meta.items()) and "seeds" not in dict(tt.meta.items())


def test_comparison_figure(tmp_path):
    img = np.zeros((16, 20, 3), np.uint8)
    fig = figures.comparison_figure([{"rainy": img, "MOSS": img}] * 2, ["a", "b"])
    assert figures.save_figure(fig, tmp_path / "sub" / "c.png").stat().st_size > 500
    with pytest.raises(ValueError, match="at least one row"):
        figures.comparison_figure([])


def test_book_dirs_resolve_relative_to_the_checkout(tmp_path):
    d = places.book_dirs("smoke", str(tmp_path / "r"), str(tmp_path / "f"), str(tmp_path / "runs"))
    assert d.results == tmp_path / "r" / "smoke" and d.figures.is_dir() and d.runs == tmp_path / "runs"
    assert (places.repo_root() / "mosslib" / "measure" / "tables.py").is_file()


def test_three_seeds_that_disagree_are_not_called_real_though_the_bootstrap_excludes_zero(tmp_path):
    # every seed gains, but by +0.05, +0.5 and +0.1 dB: resampling 3 seeds never reaches zero, the t
    # interval over their means does
    base = [two_groups(0.0, s) for s in range(3)]
    new = [two_groups(shift, s) for s, shift in enumerate((0.05, 0.5, 0.1))]
    g = gains.gain_of(base, new, "dense", "psnr")
    assert g.seeds == 3 and g.significant and g.lo > 0
    assert g.t_lo < 0 < g.t_hi and g.seed_noise_not_ruled_out and not g.real
    assert "seed noise is not ruled out" in g.sentence("x")
    steady = gains.gain_of(base, [two_groups(0.5 + 0.01 * s, s) for s in range(3)], "dense", "psnr")
    assert steady.t_lo > 0 and steady.real and "a real difference" in steady.sentence("x")
    # the results files carry the t interval for several seeds, not for one
    evals = {"full": base, "no_tv": new}
    t4 = tables.table4(evals, meta(base, "Table 4"))
    row = t4.frame.set_index("config").loc["no_tv"]
    assert row["dense_psnr_vs_full_t_lo"] == pytest.approx(g.t_lo) and row["dense_psnr_vs_full_t_hi"] == pytest.approx(g.t_hi)
    one = tables.table4({"full": base[:1], "no_tv": new[:1]}, meta(base[:1], "Table 4"))
    assert "dense_psnr_vs_full_t_lo" not in one.frame and "dense_psnr_vs_full_ci_lo" in one.frame
