"""mosslib.apps.ledger: verdicts from hand-made results files, the toy banner, the README block."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from mosslib.apps import book
from mosslib.apps import ledger
from mosslib.measure import paper
from mosslib.measure import tables


def ev(values: dict, seed: int = 0) -> dict:
    per = {g: [{"name": f"{g}{i}", "psnr": float(v), "ssim": min(1.0, v / 40)} for i, v in enumerate(vs)]
           for g, vs in values.items()}
    return {"splits": {}, "per_image": per, "seed": seed, "convention": "rgb", "profile": "cpu"}


def dense_sparse(shift=0.0, seed=0, noise=0.0, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    return ev({"dense": 18 + np.linspace(0, 3, 10) + shift + noise * rng.standard_normal(10),
               "sparse": 24 + np.linspace(0, 3, 10) + shift + noise * rng.standard_normal(10)}, seed)


def write_table1(results, sup, moss, profile="cpu"):
    inputs = dense_sparse(-1.0)
    inputs["seed"] = None
    meta = tables.table_meta("Table 1", moss, "hand-made data", profile)
    tables.table1(inputs, sup, moss, meta).write(results)


def claim(claims, cid):
    return next(c for c in claims if c.id == cid)


def test_no_results_means_not_testable_for_every_claim(tmp_path):
    claims = ledger.build_ledger(tmp_path, "cpu")
    ids = [c.id for c in claims]
    assert ids[:3] == ["t1-gain-dense", "t1-gain-sparse", "t1-peers"]
    assert [i for i in ids if i.startswith("t23-")] == ["t23-10", "t23-20", "t23-40", "t23-60"]
    assert [i for i in ids if i.startswith("t4-")] == [f"t4-{c}" for c in paper.TABLE4_ORDER if c != "full"]
    assert ids[-3:] == ["fig8", "memory", "fig6"]
    assert {c.verdict for c in claims} == {"not testable here"}
    assert all(c.reason for c in claims)
    # the paper's numbers come from mosslib.measure.paper, not from this test
    assert claim(claims, "t1-gain-dense").paper.startswith(f"{paper.table1_entry('MOSS').dense[2]:+.2f}")


def test_table1_verdicts_follow_seeds_and_intervals(tmp_path):
    # three seeds, a steady +1 dB gain: real over seeds and images, short of the paper's +2.62 / +1.88
    sup = [dense_sparse(0.0, s, 0.05, s) for s in range(3)]
    write_table1(tmp_path, sup, [dense_sparse(1.0, s, 0.05, 10 + s) for s in range(3)])
    claims = ledger.build_ledger(tmp_path, "cpu")
    dense = claim(claims, "t1-gain-dense")
    assert dense.verdict == "held in sign, not in size" and "3 seeds" in dense.interval
    assert dense.evidence.startswith("+1.00") and "0.75%" in dense.budget  # cpu: 12,000 x 4 x 128^2
    assert claim(claims, "t1-peers").verdict == "not testable here"
    # a gain as large as the paper's: held
    write_table1(tmp_path, sup, [dense_sparse(3.0, s, 0.05, 10 + s) for s in range(3)])
    assert claim(ledger.build_ledger(tmp_path, "cpu"), "t1-gain-dense").verdict == "held"
    # one seed, the same steady gain: an interval over images only cannot claim it
    write_table1(tmp_path, sup[:1], [dense_sparse(1.0, 0, 0.05, 10)])
    one = claim(ledger.build_ledger(tmp_path, "cpu"), "t1-gain-dense")
    assert one.verdict == "not testable here" and "one seed" in one.reason and "not training noise" in one.interval
    # noise only: not held; the opposite sign: not held
    write_table1(tmp_path, sup, [dense_sparse(0.0, s, 1.0, 20 + s) for s in range(3)])
    assert claim(ledger.build_ledger(tmp_path, "cpu"), "t1-gain-dense").verdict == "not held"
    write_table1(tmp_path, sup, [dense_sparse(-1.0, s, 0.05, 10 + s) for s in range(3)])
    worse = claim(ledger.build_ledger(tmp_path, "cpu"), "t1-gain-dense")
    assert worse.verdict == "not held" and "opposite" in worse.reason


def test_identical_models_are_not_a_gain(tmp_path):
    sup = [dense_sparse(0.0, s) for s in range(2)]
    write_table1(tmp_path, sup, [dense_sparse(0.0, s) for s in range(2)])  # +0.00 [+0.00, +0.00]
    c = claim(ledger.build_ledger(tmp_path, "cpu"), "t1-gain-dense")
    assert c.evidence == "+0.00 dB [+0.00, +0.00]" and c.verdict == "not held" and "no width" in c.reason


def test_gain_verdict_directions():
    # both intervals must exclude zero: a t interval over the seeds' means that reaches it is seed noise
    t_zero = ledger.gain_verdict(ledger.Evidence(-0.8, -1.0, -0.6, 10, 3, -1.9, 0.3), -0.7)
    assert t_zero[0] == "not held" and "seed noise is not ruled out" in t_zero[1]
    assert ledger.gain_verdict(ledger.Evidence(-0.8, -1.0, -0.6, 10, 3, -1.2, -0.4), -0.7)[0] == "held"
    assert ledger.gain_verdict(ledger.Evidence(-0.8, -1.0, -0.6, 10, 3), -0.7)[0] == "held"
    assert ledger.gain_verdict(ledger.Evidence(-0.2, -0.3, -0.1, 10, 3), -0.7)[0] == "held in sign, not in size"
    assert ledger.gain_verdict(ledger.Evidence(0.2, 0.1, 0.3, 10, 3), -0.7)[0] == "not held"
    assert ledger.gain_verdict(ledger.Evidence(0.5, math.nan, math.nan, 10, 3), 0.3)[0] == "not testable here"


def test_table4_and_limited_and_timing(tmp_path):
    evals = {c: [dense_sparse(-0.8 if c != "full" else 0.0, s, 0.05, 10 * k + s) for s in range(2)]
             for k, c in enumerate(paper.TABLE4_ORDER)}
    evals["no_tv"] = [dense_sparse(0.0, s, 0.5, 30 + s) for s in range(2)]  # removal changes nothing
    wiggle = np.tile([-1.0, 1.0], 5)  # mean zero over the 10 images
    evals["no_skip"] = [ev({g: [im["psnr"] + d for im, d in zip(full["per_image"][g], shift)]  # costs dense only
                            for g, shift in (("dense", -0.8 + 0.05 * wiggle), ("sparse", 0.3 * wiggle))}, s)
                        for s, full in enumerate(evals["full"])]
    tables.table4(evals, tables.table_meta("Table 4", evals["full"], "hand-made", "cpu",
                                           notes=["steps per run: 2000 (pre-training 1000)"])).write(tmp_path)
    results = {pct: {"D_L": [ev({"all": 20 + np.arange(8) * 0.1}, s) for s in range(2)],
                     "D_L + D_U": [ev({"all": 20.5 + np.arange(8) * 0.1 + 0.01 * s}, s) for s in range(2)]}
               for pct in (10, 20, 40, 60)}
    results[100] = {"D_L": results[10]["D_L"]}
    tables.limited_table(results, tables.table_meta("Tables 2-3", results[10]["D_L"], "hand-made", "cpu"),
                         None, name="table2-3_rain100l").write(tmp_path)
    timing = pd.DataFrame({"arch": ["ddn", "moedn", "moedn-int8", "didmdn", "prenet"], "ms": [30.0, 60.0, 20.0, 90.0, 400.0]})
    tables.timing_table(timing, tables.TableMeta("Fig. 8: milliseconds per 256x256 image", "cpu", "random", "ms", {}, ()),
                        256).write(tmp_path)
    claims = ledger.build_ledger(tmp_path, "cpu")
    basic = claim(claims, "t4-basic")  # -0.8 dB against the paper's -2.92 / -2.04: real, smaller
    assert basic.verdict == "held in sign, not in size" and "0.12%" in basic.budget
    assert claim(claims, "t4-no_tv").verdict == "not held" and claim(claims, "t4-no_tv").split == ""
    # the splits disagree: the weaker verdict stands, and each split's is named beside it
    skip = claim(claims, "t4-no_skip")
    assert skip.verdict == "not held"
    assert skip.split == "dense: held in sign, not in size; sparse: not held"
    assert "**not held** (dense: held in sign, not in size; sparse: not held)" in ledger.readme_markdown(claims)
    assert basic.split == ""
    # +0.5 dB at 10 % (paper +0.30 / +0.51): the interval reaches the smaller reported gain
    assert claim(claims, "t23-10").verdict == "held"
    fig8 = claim(claims, "fig8")  # the int8 path is the same network: moedn ranks 2 of 4
    assert fig8.verdict == "held" and fig8.evidence.startswith("rank 2 of 4")
    pd.DataFrame({"arch": ["ddn", "didmdn", "moedn"], "ms": [1.0, 2.0, 3.0]}).pipe(
        lambda t: tables.timing_table(t, tables.TableMeta("Fig. 8: milliseconds per 256x256 image", "cpu", "r", "ms", {}, ()),
                                      256).write(tmp_path))
    assert claim(ledger.build_ledger(tmp_path, "cpu"), "fig8").verdict == "not held"


def test_memory_claim_reads_the_diagnostics(tmp_path):
    inert = {"usage": {"alive": 18, "top_share": 0.88, "perplexity": 2.1},
             "attention": {"max_weight": 0.0054, "entropy": 6.2, "uniform_entropy": 6.238},
             "ablation": {"mean": {"dense": -0.03, "sparse": 0.0}, "zeros": {"dense": 0.11, "sparse": 0.15}},
             "ablation_ci": {"mean": {"dense": [-0.08, 0.02], "sparse": [-0.03, 0.03]}}}
    (tmp_path / "memory.json").write_text(json.dumps(inert))
    c = claim(ledger.build_ledger(tmp_path, "cpu"), "memory")
    assert c.verdict == "not held" and "near uniform" in c.reason and "alive 18" in c.evidence
    working = dict(inert, ablation={"mean": {"dense": -0.9, "sparse": -1.2}, "zeros": {}},
                   ablation_ci={"mean": {"dense": [-1.1, -0.7], "sparse": [-1.4, -1.0]}})
    (tmp_path / "memory.json").write_text(json.dumps(working))
    assert claim(ledger.build_ledger(tmp_path, "cpu"), "memory").verdict == "held"
    (tmp_path / "memory.json").write_text("{not json")
    assert claim(ledger.build_ledger(tmp_path, "cpu"), "memory").verdict == "not testable here"


def test_user_study_claim(tmp_path):
    from mosslib.apps.userstudy import COLUMNS

    csv = tmp_path / "user_study.csv"
    pd.DataFrame(columns=list(COLUMNS)).to_csv(csv, index=False)
    assert claim(ledger.build_ledger(tmp_path, "cpu"), "fig6").verdict == "not testable here"
    rows = [{"time": "t", "session": "s", "trial": i, "photo": f"p{i}", "left": "MOSS", "right": "supervised",
             "choice": "left", "winner": "MOSS" if i % 10 else "supervised"} for i in range(40)]
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(csv, index=False)
    c = claim(ledger.build_ledger(tmp_path, "cpu"), "fig6")
    assert c.verdict == "held" and "90 %" in c.evidence


def test_written_files_and_toy_banner(tmp_path):
    out = ledger.write_ledger(tmp_path / "quick", "quick")
    md = out["paths"]["md"].read_text()
    assert md.startswith("# Claims ledger (quick)") and "pipeline demonstration at toy scale, not evidence" in md
    data = json.loads(out["paths"]["json"].read_text())
    assert data["verdicts"] == list(ledger.VERDICTS) and len(data["claims"]) == len(out["claims"])
    assert len(pd.read_csv(out["paths"]["csv"])) == len(out["claims"])
    assert "toy scale" not in ledger.write_ledger(tmp_path / "cpu", "cpu")["paths"]["md"].read_text()
    # every toy table carries the banner; cpu tables do not
    sup = [dense_sparse(0.0, 0)]
    for profile in ("smoke", "cpu"):
        write_table1(tmp_path / profile, sup, [dense_sparse(1.0, 0)], profile)
    assert "toy scale, not evidence" in (tmp_path / "smoke" / "table1.md").read_text()
    assert "# status: smoke profile: pipeline demonstration" in (tmp_path / "smoke" / "table1.csv").read_text()
    assert "toy scale" not in (tmp_path / "cpu" / "table1.md").read_text()


def test_readme_block_between_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- ledger:start -->\nold text\n<!-- ledger:end -->\nrest\n")
    assert ledger.update_readme(readme, "| new | table |\n")
    assert readme.read_text() == "intro\n<!-- ledger:start -->\n| new | table |\n<!-- ledger:end -->\nrest\n"
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers here\n")
    assert not ledger.update_readme(plain, "x") and plain.read_text() == "no markers here\n"


@pytest.mark.parametrize("profile,results_in_repo,touched", [("cpu", True, True), ("quick", True, False),
                                                              ("smoke", True, False), ("cpu", False, False)])
def test_only_the_cpu_book_in_this_checkout_rewrites_the_readme(tmp_path, monkeypatch, profile, results_in_repo, touched):
    import mosslib.measure.places

    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)
    (repo / "README.md").write_text("a\n<!-- ledger:start -->\nold\n<!-- ledger:end -->\nb\n")
    monkeypatch.setattr(mosslib.measure.places, "repo_root", lambda: repo)
    results = repo / "results" if results_in_repo else tmp_path / "elsewhere"
    book._write_ledger(profile, {"results_dir": str(results)}, str(results))
    text = (repo / "README.md").read_text()
    assert ("old" not in text) == touched
    if touched:
        assert "not testable here" in text and text.startswith("a\n<!-- ledger:start -->\nClaims of the paper")
        assert "(results/cpu/ledger.md)" in text and text.endswith("<!-- ledger:end -->\nb\n")
    assert (results / profile / "ledger.md").is_file()


def test_one_seed_table1_takes_its_verdict_from_table4_seeds(tmp_path):
    # Table 1 at one seed (its long budget); Table 4 at three seeds: MOSS 1 dB above its supervised twin
    write_table1(tmp_path, [dense_sparse(0.0, 0, 0.05, 0)], [dense_sparse(1.0, 0, 0.05, 10)])
    one = claim(ledger.build_ledger(tmp_path, "cpu"), "t1-gain-dense")
    assert one.verdict == "not testable here" and "one seed" in one.reason
    evals = {c: [dense_sparse(0.0, s, 0.05, 10 * k + s) for s in range(3)] for k, c in enumerate(paper.TABLE4_ORDER)}
    evals["no_selftrain"] = [dense_sparse(-1.0, s, 0.05, 70 + s) for s in range(3)]
    tables.table4(evals, tables.table_meta("Table 4", evals["full"], "hand-made", "cpu",
                                           notes=["steps per run: 2000 (pre-training 1000)"])).write(tmp_path)
    dense = claim(ledger.build_ledger(tmp_path, "cpu"), "t1-gain-dense")
    assert dense.verdict == "held in sign, not in size" and "3 seeds" in dense.interval
    assert dense.evidence.startswith("+1.0") and "one seed at Table 1's budget" in dense.evidence
    assert "0.12%" in dense.budget and "Table 4" in dense.reason  # 2,000 steps, not Table 1's 12,000
    # Table 1 over seeds of its own: its own runs decide again
    write_table1(tmp_path, [dense_sparse(0.0, s, 0.05, s) for s in range(3)], [dense_sparse(3.0, s, 0.05, 10 + s) for s in range(3)])
    assert claim(ledger.build_ledger(tmp_path, "cpu"), "t1-gain-dense").verdict == "held"


def test_one_seed_table1_prefers_the_memory_studys_three_seeds(tmp_path):
    # the study's paper-faithful arm: MOSS and its supervised twin from the same pre-training, 3,000 steps
    results = tmp_path / "cpu"
    results.mkdir()
    write_table1(results, [dense_sparse(0.0, 0, 0.05, 0)], [dense_sparse(1.0, 0, 0.05, 10)])
    seeds = tmp_path / "study" / "seeds"
    seeds.mkdir(parents=True)
    rng = np.random.default_rng(1)

    def record(s, kind, shift):
        per = {g: {f"{g}{i}": base + i + shift + 0.05 * rng.standard_normal() for i in range(10)}
               for g, base in (("dense", 18.0), ("sparse", 24.0))}
        return {"arm": "paper", "seed": s, "kind": kind, "test_per_image": {"trained": per, "mean": per},
                "run_config": {"optim": {"steps": 3000}, "data": {"batch_size": 4, "crop": 128}}}

    for s in range(2):
        for kind, shift in (("full", 0.3), ("no_selftrain", 0.0)):
            (seeds / f"paper-s{s}-{kind}.json").write_text(json.dumps(record(s, kind, shift)))
    assert claim(ledger.build_ledger(results, "cpu"), "t1-gain-dense").verdict == "not testable here"  # 2 of 3 seeds
    (seeds / "paper-s2-full.json").write_text(json.dumps(record(2, "full", 0.3)))
    assert claim(ledger.build_ledger(results, "cpu"), "t1-gain-dense").verdict == "not testable here"  # its twin missing
    (seeds / "paper-s2-no_selftrain.json").write_text(json.dumps(record(2, "no_selftrain", 0.0)))
    dense = claim(ledger.build_ledger(results, "cpu"), "t1-gain-dense")
    assert dense.verdict == "held in sign, not in size" and "3 seeds" in dense.interval
    assert dense.evidence.startswith("+0.3") and "memory study" in dense.evidence and "memory study" in dense.reason
    assert "3,000 steps" in dense.budget


def test_cpu_memory_claim_takes_its_verdict_from_the_study_seeds(tmp_path):
    results = tmp_path / "cpu"
    results.mkdir()
    working_one_model = {"usage": {"alive": 18, "top_share": 0.88, "perplexity": 2.1},
                         "attention": {"max_weight": 0.0054, "entropy": 3.0, "uniform_entropy": 6.238},
                         "ablation": {"mean": {"dense": -0.9, "sparse": -1.2}, "zeros": {}},
                         "ablation_ci": {"mean": {"dense": [-1.1, -0.7], "sparse": [-1.4, -1.0]}}}
    (results / "memory.json").write_text(json.dumps(working_one_model))
    assert claim(ledger.build_ledger(results, "cpu"), "memory").verdict == "held"  # one model, no study yet
    seeds = tmp_path / "study" / "seeds"
    seeds.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for s in range(3):  # over seeds the paper-faithful memory is inert: the ablation is noise around zero
        trained = {g: {f"{g}{i}": 20.0 + i for i in range(10)} for g in ("dense", "sparse")}
        mean = {g: {k: v + 0.05 * rng.standard_normal() for k, v in trained[g].items()} for g in trained}
        rec = {"arm": "paper", "seed": s, "kind": "full", "test_per_image": {"trained": trained, "mean": mean},
               "run_config": {"optim": {"steps": 3000}, "data": {"batch_size": 4, "crop": 128}}}
        (seeds / f"paper-s{s}-full.json").write_text(json.dumps(rec))
        # another arm's records and the supervised twin do not count
        (seeds / f"t0.1-s{s}-full.json").write_text(json.dumps(dict(rec, arm="t0.1")))
    c = claim(ledger.build_ledger(results, "cpu"), "memory")
    assert c.verdict == "not held" and "3 seeds" in c.interval and c.page == "07_memory_study"
    assert c.evidence.startswith("over 3 seeds of the memory study's paper-faithful MOSS") and "3,000 steps" in c.budget
    assert "; the shipped model: ablation" in c.evidence  # mosslib memory --json without a checkpoint name
    (results / "memory.json").write_text(json.dumps({**working_one_model, "run": "full-4c10608669", "seed": 0}))
    c = claim(ledger.build_ledger(results, "cpu"), "memory")  # page 05's record names the run it measured
    assert "; Table 1's MOSS, seed 0: ablation" in c.evidence and "shipped" not in c.evidence
    (results / "memory.json").write_text(json.dumps(working_one_model))
    assert claim(ledger.build_ledger(results, "quick"), "memory").verdict == "held"  # a toy book keeps its own model
    (results / "memory.json").write_text(json.dumps({**working_one_model, "ablation": {"mean": {}, "zeros": {}}}))
    assert claim(ledger.build_ledger(results, "cpu"), "memory").verdict == "not held"  # the study decides without deltas
    (results / "memory.json").unlink()
    c = claim(ledger.build_ledger(results, "cpu"), "memory")
    assert c.verdict == "not held" and "shipped model" not in c.evidence  # ... and without the one-model diagnostics
    (results / "memory.json").write_text(json.dumps(working_one_model))
    (seeds / "paper-s2-full.json").unlink()
    assert claim(ledger.build_ledger(results, "cpu"), "memory").verdict == "held"  # 2 of 3 seeds: the study does not decide yet


def test_table4_seeds_that_disagree_do_not_hold_a_cost(tmp_path):
    # w/o TV costs -0.05, -0.9 and -0.1 dB on the 3 seeds: the bootstrap over seeds excludes zero, the
    # t interval over the seeds' means (read back from table4.csv) does not, so the cost is not held
    evals = {c: [dense_sparse(0.0, s, 0.01, 10 * k + s) for s in range(3)] for k, c in enumerate(paper.TABLE4_ORDER)}
    evals["no_tv"] = [dense_sparse(shift, s, 0.01, 90 + s) for s, shift in enumerate((-0.05, -0.9, -0.1))]
    tables.table4(evals, tables.table_meta("Table 4", evals["full"], "hand-made", "cpu")).write(tmp_path)
    frame = pd.read_csv(tmp_path / "table4.csv", comment="#").set_index("config")
    assert frame.loc["no_tv", "dense_psnr_vs_full_ci_hi"] < 0 < frame.loc["no_tv", "dense_psnr_vs_full_t_hi"]
    no_tv = claim(ledger.build_ledger(tmp_path, "cpu"), "t4-no_tv")
    assert no_tv.verdict == "not held" and "seed noise is not ruled out" in no_tv.reason
