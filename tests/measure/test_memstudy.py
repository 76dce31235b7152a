"""The memory study's tables and verdict, on hand-made records."""
import json
import zlib

import numpy as np
import pytest

from mosslib.measure.memstudy import arms_table, load_records, screen_table, seed_image_bootstrap, seeds_table, verdict

IMAGES = [f"im{i}" for i in range(10)]


def _rec(arm, seed, kind, base, ablation_cost, noise=0.0, removed=10.0, **model):
    rng = np.random.default_rng(zlib.crc32(repr((arm, seed, kind)).encode()))  # stable: str hash() varies per process
    trained = {s: {k: base + (3 if s == "sparse" else 0) + noise * rng.standard_normal() for k in IMAGES}
               for s in ("dense", "sparse")}
    mean = {s: {k: v - ablation_cost for k, v in trained[s].items()} for s in trained}
    zeros = {s: {k: v - 2 * ablation_cost for k, v in trained[s].items()} for s in trained}
    avg = {s: float(np.mean(list(trained[s].values()))) for s in trained}
    return {
        "arm": arm, "seed": seed, "kind": kind,
        "health": {"usage": {"alive": 5, "top_share": 0.5, "perplexity": 3.0},
                   "attention": {"max_weight": 0.1, "entropy": 3.0, "uniform_entropy": 6.0}},
        "test": {"trained": avg, "ablation": {"mean": {s: -ablation_cost for s in avg}},
                 "ablation_ci": {"mean": {s: [-ablation_cost - 0.1, -ablation_cost + 0.1] for s in avg}}},
        "test_per_image": {"trained": trained, "mean": mean, "zeros": zeros},
        "val": {"trained": {"val": base + 5}, "ablation": {"mean": {"val": -ablation_cost}},
                "ablation_ci": {"mean": {"val": [-ablation_cost - 0.1, -ablation_cost + 0.1]}}},
        "real": {"n": 3, "removed": removed, "ablation_change": {"mean": 1.0, "zeros": 2.0}},
        "run_config": {"model": {"fuse": True, "memory_read": "soft", "memory_temperature": 1.0, "memory_anneal": 0.99998,
                                 "memory_min_temperature": 0.03, **model}},
    }


def _write(tmp_path, recs):
    for r in recs:
        d = tmp_path / ("screen" if r["kind"] == "screen" else "seeds")
        d.mkdir(exist_ok=True)
        name = r["arm"] if r["kind"] == "screen" else f"{r['arm']}-s{r['seed']}-{r['kind']}"
        (d / f"{name}.json").write_text(json.dumps(r))
    return load_records(tmp_path)


def test_bootstrap_one_seed_is_the_image_bootstrap_and_seeds_widen_it():
    m, lo, hi = seed_image_bootstrap([[1.0] * 10])
    assert (m, lo, hi) == (1.0, 1.0, 1.0)
    same = seed_image_bootstrap([[0.5, 1.5] * 5] * 3)
    spread = seed_image_bootstrap([[0.5, 1.5] * 5, [2.5, 3.5] * 5, [-1.5, -0.5] * 5])
    assert spread[2] - spread[1] > same[2] - same[1]  # seed-to-seed noise is in the interval
    assert spread[0] == pytest.approx(1.0)
    assert np.isnan(seed_image_bootstrap([])[0])


def test_inert_paper_memory_and_a_working_variant(tmp_path):
    recs = [_rec("paper", 0, "screen", 18.0, 0.0), _rec("t0.1", 0, "screen", 18.0, 0.5)]
    for s in range(3):
        recs += [_rec("paper", s, "full", 18.2, 0.0, 0.05), _rec("paper", s, "no_selftrain", 18.0, 0.0, 0.05),
                 _rec("t0.1", s, "full", 18.5, 0.6, 0.05, removed=14.0), _rec("t0.1", s, "no_selftrain", 18.0, 0.6, 0.05)]
    records = _write(tmp_path, recs)
    st = screen_table(records)
    assert list(st.index) == ["paper", "t0.1"] and st.loc["paper", "dense"] == pytest.approx(18.0)
    table = seeds_table(records)
    assert table.loc["paper", "seeds"] == 3
    assert float(table.loc["t0.1", "self-training gain dense"].split()[0]) == pytest.approx(0.5, abs=0.05)
    v = verdict(records)
    assert v["carries"]["answer"] == "no"
    assert v["works"]["answer"] == "yes" and v["works"]["arm"] == "t0.1"
    assert v["changes"]["answer"] == "yes"  # gain +0.5 against +0.2
    assert "14.00 (seeds: 14.00, 14.00, 14.00) against 10.00" in v["changes"]["text"]  # real photos, every seed
    (tmp_path / "seeds" / "t0.1-s2-full.json").unlink()
    v = verdict(load_records(tmp_path))
    assert v["works"]["answer"] == "open" and "t0.1 2/3" in v["works"]["text"]  # 2 of 3 seeds: not yet a "yes"


def test_no_variant_works_when_its_ablation_is_too_small_or_it_loses_accuracy(tmp_path):
    recs = []
    for s in range(3):
        recs += [_rec("paper", s, "full", 18.2, 0.0, 0.05), _rec("paper", s, "no_selftrain", 18.0, 0.0, 0.05),
                 _rec("small", s, "full", 18.2, 0.1, 0.05), _rec("small", s, "no_selftrain", 18.0, 0.1, 0.05),
                 _rec("worse", s, "full", 17.0, 1.0, 0.05), _rec("worse", s, "no_selftrain", 17.0, 1.0, 0.05)]
    v = verdict(_write(tmp_path, recs))
    assert v["works"]["answer"] == "no" and "small 3/3" in v["works"]["text"]
    assert "short of the rule: 'worse'" in v["works"]["text"]  # used by the decoder, 1.2 dB worse
    # the third question reads the memory the decoder uses (the amendment): gain +0.0 against +0.2
    assert v["changes"]["answer"] == "yes" and v["changes"]["arm"] == "worse"
    assert "though it does not meet the rule" in v["changes"]["text"] and "a smaller gain." in v["changes"]["text"]
    (tmp_path / "b").mkdir()
    v = verdict(_write(tmp_path / "b", [r for r in recs if r["arm"] != "worse"]))
    assert v["works"]["answer"] == "no" and v["changes"]["answer"] == "cannot be asked"  # no memory is used at all


def test_no_variant_works_is_not_said_before_every_seeded_arm_has_its_seeds(tmp_path):
    # screens make "live" (fusion off: a real cost, worse PSNR) a seeded arm by the amendment
    recs = [_rec("paper", 0, "screen", 18.0, 0.0), _rec("small", 0, "screen", 18.0, 0.1), _rec("live", 0, "screen", 17.0, 1.0)]
    recs += [r for s in range(3) for r in (_rec("paper", s, "full", 18.2, 0.0, 0.05), _rec("small", s, "full", 18.2, 0.1, 0.05))]
    v = verdict(_write(tmp_path, recs))
    assert v["works"]["answer"] == "open" and "live 0/3" in v["works"]["text"]
    assert v["changes"]["answer"] == "open"
    recs = [_rec("live", s, "full", 17.0, 1.0, 0.05) for s in range(2)]
    assert verdict(_write(tmp_path, recs))["works"]["answer"] == "open"  # 2 of 3 seeds: "yes" could still come, "no" waits
    v = verdict(_write(tmp_path, [_rec("live", 2, "full", 17.0, 1.0, 0.05)]))
    assert v["works"]["answer"] == "no" and "live 3/3" in v["works"]["text"]  # costs 1 dB but loses 1.2 dB of PSNR


def test_open_answers_before_the_seeds_exist(tmp_path):
    v = verdict(_write(tmp_path, [_rec("paper", 0, "screen", 18.0, 0.0)]))
    assert v["carries"]["answer"] == "open" and "screen only" in v["carries"]["text"]
    assert v["works"]["answer"] == "open"
    assert verdict(load_records(tmp_path / "none"))["carries"]["answer"] == "open"


def _study_script(name: str):
    """experiments/memory_study/<name>.py as a module (a script, not part of the package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "experiments" / "memory_study" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"memory_study_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _study_runner():
    """The grid's runner, run.py."""
    return _study_script("run")


def test_study_rule_picks_two_at_parity_and_the_costliest_live_memory(tmp_path):
    import json

    run = _study_runner()
    others = [a for a in run.ARMS if a != "paper"]
    a, b, c, far, near = others[:5]
    # arm -> (validation PSNR, validation mean-ablation delta, its interval); the rest: parity, no effect
    spec = {"paper": (25.5, 0.0, [0.0, 0.001]), a: (25.4, -0.08, [-0.1, -0.05]), b: (25.3, -0.01, [-0.02, -0.005]),
            c: (25.6, 0.2, [0.1, 0.3]), far: (24.0, -3.0, [-4.0, -2.0]), near: (24.5, -1.0, [-1.5, -0.5])}

    def write(arm, psnr, cost, ci):
        rec = {"val": {"trained": {"val": psnr}, "ablation": {"mean": {"val": cost}}, "ablation_ci": {"mean": {"val": ci}}}}
        (tmp_path / "screen" / f"{arm}.json").write_text(json.dumps(rec))

    (tmp_path / "screen").mkdir()
    for arm in run.ARMS:
        write(arm, *spec.get(arm, (25.5, 0.0, [-0.001, 0.001])))
    assert run.chosen_arms(tmp_path) == ["paper", a, b, far]  # parity picks a and b; the amendment adds far
    write(far, 24.0, -3.0, [-4.0, 0.5])
    assert run.chosen_arms(tmp_path) == ["paper", a, b, near]  # an interval reaching zero does not count
    (tmp_path / "screen" / f"{others[-1]}.json").unlink()
    assert run.chosen_arms(tmp_path) is None  # screening incomplete


def test_arms_table_names_what_each_arm_changes_from_its_saved_config(tmp_path):
    records = _write(tmp_path, [_rec("t0.1", 0, "screen", 18.0, 0.5, memory_temperature=0.1),
                                _rec("paper", 0, "screen", 18.0, 0.0),
                                _rec("g", 0, "screen", 18.0, 0.0, memory_read="gumbel", fuse=False)])
    t = arms_table(records)
    assert list(t.index) == ["paper", "g", "t0.1"]  # the paper-faithful arm first
    assert "as written" in t.loc["paper", "changes"]
    assert t.loc["t0.1", "changes"] == "memory_temperature=0.1"  # the soft read: no anneal shown
    assert t.loc["g", "changes"] == "fuse=False, memory_read=gumbel, memory_anneal=0.99998, memory_min_temperature=0.03"
    assert list(screen_table(records).index) == ["paper", "g", "t0.1"]
    (tmp_path / "x").mkdir()
    assert arms_table(_write(tmp_path / "x", [_rec("t0.1", 0, "screen", 18.0, 0.5)])).empty  # no baseline


def test_one_seed_or_a_hair_of_a_cost_does_not_make_the_memory_carry_information(tmp_path):
    one = verdict(_write(tmp_path, [_rec("paper", 0, "full", 18.2, 0.5, 0.05), _rec("paper", 0, "no_selftrain", 18.0, 0.5)]))
    assert one["carries"]["answer"] == "open" and "1 of 3 seeds" in one["carries"]["text"]
    (tmp_path / "b").mkdir()
    recs = [r for s in range(3) for r in (_rec("paper", s, "full", 18.2, 0.00001, 0.05), _rec("paper", s, "no_selftrain", 18.0, 0.0))]
    assert verdict(_write(tmp_path / "b", recs))["carries"]["answer"] == "no"  # -0.00 [-0.00, -0.00]: below precision


def test_seed_grids_wait_for_seed_0_of_every_arm_and_for_every_run_folder(tmp_path, monkeypatch, tiny_moedn):
    from PIL import Image

    run = _study_runner()
    monkeypatch.setattr(run, "load_model", lambda path, which: tiny_moedn[0])
    photos = tmp_path / "data" / "DDN-SIRR" / "real_input"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in run.FIGURE_PHOTOS:
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(photos / name)
    results, runs, arms = tmp_path / "results", tmp_path / "runs", ["paper", "t0.1"]
    (results / "seeds").mkdir(parents=True)
    for arm in arms:
        for config in ("full", "no_selftrain"):
            folder = runs / arm / f"s0-{config}-{run.STEPS}"
            folder.mkdir(parents=True)
            (folder / "done.json").write_text("{}")
            if (arm, config) != ("t0.1", "no_selftrain"):
                (results / "seeds" / f"{arm}-s0-{config}.json").write_text("{}")
    assert run.save_seed_grids(runs, results, tmp_path / "data", arms) == []  # one record missing
    (results / "seeds" / "t0.1-s0-no_selftrain.json").write_text("{}")
    (runs / "paper" / f"s0-full-{run.STEPS}" / "done.json").unlink()
    assert run.save_seed_grids(runs, results, tmp_path / "data", arms) == []  # a lost run folder
    (runs / "paper" / f"s0-full-{run.STEPS}" / "done.json").write_text("{}")
    written = run.save_seed_grids(runs, results, tmp_path / "data", arms)
    assert [p.name for p in written] == [f"seeds_real_{n.split('.')[0]}.jpg" for n in run.FIGURE_PHOTOS]
    assert all(Image.open(p).size[0] > 0 for p in written)


def _study_gpu():
    """The study at GPU scale, gpu.py: the device call's settings and the scoring here."""
    return _study_script("gpu")


def test_gpu_settings_are_the_grids_and_compress_the_anneal_into_the_run():
    gpu, run = _study_gpu(), _study_runner()
    assert all(run.arm_settings(arm, run.STEPS) == run.ARMS[arm] for arm in run.ARMS)  # the CPU grid unchanged
    line = gpu.settings("gumbel_fast", 1000)
    assert f"--set model.memory_anneal={0.03 ** (1 / 1000)!r}" in line and "--set model.memory_read=gumbel" in line
    assert gpu.settings("paper", 1000) == ""
    with pytest.raises(SystemExit, match="unknown arm 'nope'"):
        gpu.settings("nope", 1000)


def test_gpu_scoring_reads_the_card_and_moves_the_device_paths_here(tmp_path, monkeypatch, tiny_moedn):
    from mosslib.method.checkpoint import save_model
    from mosslib.method.profiles import make_config
    from mosslib.model.config import to_dict

    gpu = _study_gpu()
    config = json.loads(json.dumps(make_config("smoke", "full", data_root=""), default=lambda o: o.__dict__))
    config["data"].update(root="/device/work/data", unlabeled="/device/work/data/DDN-SIRR/real_input")
    card = {"config": config, "best_step": 800, "validation": {"step": 800, "psnr": 30.5}, "steps_trained": 900,
            "trained_with": {"device": "cuda"}}
    model = tiny_moedn[0]
    path = save_model(model, tmp_path / "gumbel_fast-s2-no_selftrain.pt", config=to_dict(model.cfg), card=card)
    seen = {}

    def fake_measure(model, cfg, config, best, data_root, cache):
        seen.update(root=cfg.data.root, unlabeled=config["data"]["unlabeled"], best=best)
        return {"test": {}}

    monkeypatch.setattr(gpu, "measure_model", fake_measure)
    here = tmp_path / "data"
    rec = gpu.score_file(path, here, {})
    assert (rec["arm"], rec["seed"], rec["kind"], rec["scale"], rec["steps_trained"]) == ("gumbel_fast", 2, "no_selftrain", "gpu", 900)
    assert seen == {"root": str(here), "unlabeled": str(here / "DDN-SIRR" / "real_input"), "best": {"step": 800, "psnr": 30.5}}
    bad = save_model(model, tmp_path / "paper-full.pt")
    with pytest.raises(SystemExit, match="paper-full.pt: not a study model"):
        gpu.score_file(bad, here, {})
    bare = save_model(model, tmp_path / "paper-s0-full.pt")
    with pytest.raises(SystemExit, match="paper-s0-full.pt: no model card"):
        gpu.score_file(bare, here, {})


def test_gpu_summary_names_the_budget_and_the_arms(tmp_path):
    gpu = _study_gpu()
    recs = [_rec("paper", s, k, 18.0 + 0.1 * s + (0.2 if k == "full" else 0), 0.0) for s in range(2)
            for k in ("full", "no_selftrain")]
    for r in recs:
        r["run_config"].update(data={"batch_size": 16, "crop": 256}, optim={"steps": 4000, "pretrain_steps": 2000})
        r.update(steps_trained=4000, trained_with={"device": "cuda"})
    text = gpu.summary_markdown(_write(tmp_path, recs))
    assert "4000 steps planned (4000 trained), batch 16 of 256x256 crops, self-training from step 2000; device cuda" in text
    assert "| paper | 2 |" in text and "+0.20 [+0.20, +0.20]" in text  # the self-training gain over two seeds
    assert "No records yet" in gpu.summary_markdown(load_records(tmp_path / "none"))


def test_a_memory_used_on_sparse_images_only_is_read_by_the_third_question_not_the_rule(tmp_path):
    recs = []
    for s in range(3):
        recs += [_rec("paper", s, "full", 18.2, 0.0, 0.05), _rec("paper", s, "no_selftrain", 18.0, 0.0, 0.05)]
        for kind in ("full", "no_selftrain"):
            r = _rec("nofuse", s, kind, 18.2, 1.0, 0.05)
            r["test_per_image"]["mean"]["dense"] = dict(r["test_per_image"]["trained"]["dense"])  # dense: no cost
            recs.append(r)
    v = verdict(_write(tmp_path, recs))
    assert v["works"]["answer"] == "no" and "short of the rule: 'nofuse'" in v["works"]["text"]  # the rule reads dense
    assert v["changes"]["arm"] == "nofuse" and v["changes"]["answer"] == "yes"  # its gain +0.0 against +0.2


def test_the_grids_deadline_is_the_next_such_time_across_midnight():
    import datetime as dt

    run = _study_runner()
    evening = dt.datetime(2026, 12, 6, 22, 19, tzinfo=dt.timezone.utc)
    assert run.deadline_at("23:30", evening) == evening.replace(hour=23, minute=30, second=0).timestamp()
    tomorrow = dt.datetime(2026, 12, 7, 1, 2, tzinfo=dt.timezone.utc).timestamp()
    assert run.deadline_at("01:02", evening) == tomorrow  # a session that spans midnight


def test_seed_runs_table_shows_each_seed_and_a_missing_twin(tmp_path):
    from mosslib.measure.memstudy import seed_runs_table

    recs = [_rec("paper", 0, "full", 18.5, 0.0), _rec("paper", 0, "no_selftrain", 18.0, 0.0),
            _rec("paper", 1, "full", 18.0, 0.0), _rec("nofuse", 0, "full", 17.0, 1.0)]
    t = seed_runs_table(_write(tmp_path, recs))
    assert list(t.index) == [("paper", 0), ("paper", 1), ("nofuse", 0)]  # the paper-faithful arm first
    assert t.loc[("paper", 0), "self-training gain dense"] == "+0.50 [+0.50, +0.50]"  # one seed, images only
    assert t.loc[("paper", 1), "self-training gain sparse"] == "-"  # its twin has not finished
    assert t.loc[("paper", 0), "MOSS sparse"] == pytest.approx(21.5)


def test_a_gain_difference_only_the_seed_bootstrap_excludes_from_zero_is_called_weak(tmp_path):
    recs = []
    for s, gain in enumerate((0.0, -0.35, 0.15)):  # differences to the paper's +0.2: -0.2, -0.55, -0.05
        recs += [_rec("paper", s, "full", 18.2, 0.0), _rec("paper", s, "no_selftrain", 18.0, 0.0),
                 _rec("used", s, "full", 17.0 + gain, 1.0), _rec("used", s, "no_selftrain", 17.0, 1.0)]
    v = verdict(_write(tmp_path, recs))
    assert v["changes"]["answer"] == "yes"  # the rule's bootstrap over 3 seeds: every resample is below zero
    assert "a smaller gain by the rule, weakly" in v["changes"]["text"]  # a t interval over 3 seeds reaches zero
    assert "per seed -0.20, -0.55, -0.05" in v["changes"]["text"]


def test_study_verdict_markdown_reads_a_folder_or_says_it_is_empty(tmp_path):
    from mosslib.measure.memstudy import study_verdict_markdown

    assert "No memory-study records" in study_verdict_markdown(tmp_path / "none")
    _write(tmp_path, [_rec("paper", 0, "screen", 18.0, 0.0)])
    assert study_verdict_markdown(tmp_path).startswith("- **Does the memory, as the paper specifies it")
