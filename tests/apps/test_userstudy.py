"""The blind pairwise preference study: trials, CSV, resume and tallies."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from mosslib.apps import userstudy as us


def outputs(photos=("p1", "p2"), methods=("input", "supervised", "MOSS")):
    rng = np.random.default_rng(0)
    return {p: {m: rng.integers(0, 256, (6, 8, 3), dtype=np.uint8) for m in methods} for p in photos}


def test_trials_cover_every_pair_once_and_are_reproducible():
    t = us.make_trials(["a", "b", "c"], ["x", "y", "z", "w"], seed=1, session="s")
    assert len(t) == 3 * 6
    keys = [tr.key for tr in t]
    assert len(set(keys)) == len(keys)
    assert set(keys) == {(p, frozenset(pair)) for p in "abc" for pair in itertools.combinations("xyzw", 2)}
    assert t == us.make_trials(["a", "b", "c"], ["x", "y", "z", "w"], seed=1, session="s")
    assert t != us.make_trials(["a", "b", "c"], ["x", "y", "z", "w"], seed=1, session="other")
    many = us.make_trials([str(i) for i in range(40)], ["x", "y"], seed=0)
    lefts = {tr.left for tr in many}
    assert lefts == {"x", "y"}  # both methods appear on the left: sides are random
    with pytest.raises(ValueError, match="two methods"):
        us.make_trials(["a"], ["x"])


def test_record_appends_rows_and_resumes(tmp_path):
    csv = tmp_path / "results" / "user_study.csv"
    study = us.PreferenceStudy(outputs(), csv, session="alice", seed=3)
    assert study.progress == (0, 6)
    order = list(study.trials)
    first = study.current
    left, right = study.images()
    assert np.array_equal(left, study.outputs[first.photo][first.left])
    row = study.record("left")
    assert row["winner"] == first.left and row["photo"] == first.photo
    study.record("same")
    df = us.read_choices(csv)
    assert list(df.columns) == list(us.COLUMNS) and len(df) == 2
    assert df.loc[1, "winner"] == "same"
    assert csv.read_text().count("time,session") == 1  # header once

    again = us.PreferenceStudy(outputs(), csv, session="alice", seed=3)
    assert again.progress == (2, 6) and again.current == order[2]
    other = us.PreferenceStudy(outputs(), csv, session="bob", seed=3)
    assert other.progress == (0, 6)

    while not again.finished:
        again.record("right")
    assert again.progress == (6, 6) and len(us.read_choices(csv)) == 6
    with pytest.raises(ValueError, match="complete"):
        again.record("left")
    with pytest.raises(ValueError, match="choice"):
        other.record("up")


def test_study_validates_inputs(tmp_path):
    bad = outputs()
    del bad["p2"]["MOSS"]
    with pytest.raises(ValueError, match="p2"):
        us.PreferenceStudy(bad, tmp_path / "x.csv")
    with pytest.raises(ValueError, match="session"):
        us.PreferenceStudy(outputs(), tmp_path / "x.csv", session="a,b")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="wrong.csv.*missing columns"):
        us.PreferenceStudy(outputs(), wrong)


def _rows(session, triples):
    return [{"time": "t", "session": session, "trial": str(i), "photo": f"p{i}", "left": l, "right": r,
             "choice": c, "winner": {"left": l, "right": r, "same": "same"}[c]} for i, (l, r, c) in enumerate(triples)]


def test_tally_counts_ties_half_and_averages_sessions():
    df = pd.DataFrame(
        _rows("s1", [("A", "B", "left"), ("B", "A", "left"), ("A", "C", "same"), ("C", "B", "right")])
        + _rows("s2", [("A", "B", "left"), ("A", "C", "left")])
    )
    t = us.tally(df, ["A", "B", "C", "D"])
    assert t.loc["A", "comparisons"] == 5 and t.loc["A", "wins"] == 3 and t.loc["A", "ties"] == 1
    assert t.loc["A", "losses"] == 1
    # s1: A wins 1 of 3 with a tie -> (1 + 0.5)/3 = 50 %; s2: 2 of 2 -> 100 %; averaged 75 %
    assert t.loc["A", "selection_pct"] == pytest.approx(75.0)
    # B: s1 (2 of 3) -> 66.7 %; s2 (0 of 1) -> 0 %; averaged 33.3 %
    assert t.loc["B", "selection_pct"] == pytest.approx(100 / 3)
    assert t.loc["D", "comparisons"] == 0 and np.isnan(t.loc["D", "selection_pct"])
    # within one session, the shares of a pair add to 100 %
    one = us.tally(df[df.session == "s1"].iloc[:2], ["A", "B"])
    assert one["selection_pct"].sum() == pytest.approx(100.0)
    fig = us.fig_selection(t)
    assert len(fig.axes[0].patches) == 4


def test_tally_reads_a_csv(tmp_path):
    study = us.PreferenceStudy(outputs(photos=("p",), methods=("a", "b")), tmp_path / "s.csv")
    study.record("left")
    t = us.tally(tmp_path / "s.csv")
    winner = study.trials[0].left
    assert t.loc[winner, "selection_pct"] == 100.0
    empty = us.tally(tmp_path / "none.csv", ["a", "b"])
    assert (empty["comparisons"] == 0).all()


def test_method_outputs_derain_once_and_cache(tmp_path, monkeypatch):
    import torch

    from mosslib.apps.explorer import analysis as memviz
    from mosslib.model.config import ModelConfig
    from mosslib.data.imageio import read_rgb
    from mosslib.model.network import MOEDN

    torch.manual_seed(0)
    model = MOEDN(ModelConfig(ngf=8, delta=8, num_blocks=3, num_scales=2, num_layers=1, memory_items=16)).eval()
    rng = np.random.default_rng(0)
    photos = {"real/1.png": rng.integers(0, 256, (12, 16, 3), dtype=np.uint8),
              "real/2.png": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)}
    out = us.method_outputs({"MOSS": model}, photos, tmp_path, include_input=True)
    assert set(out) == set(photos) and set(out["real/1.png"]) == {"input", "MOSS"}
    assert np.array_equal(read_rgb(out["real/1.png"]["input"]), photos["real/1.png"])
    assert np.array_equal(read_rgb(out["real/1.png"]["MOSS"]), memviz.derain_image(model, photos["real/1.png"]))
    assert out["real/1.png"]["MOSS"].parent.name == "MOSS"

    def boom(*_a, **_k):
        raise AssertionError("derained again instead of using the cache")

    monkeypatch.setattr(memviz, "derain_image", boom)
    again = us.method_outputs({"MOSS": model}, photos, tmp_path, include_input=True)
    assert again == out
    study = us.PreferenceStudy({p: {m: v for m, v in d.items()} for p, d in out.items()}, tmp_path / "s.csv")
    left, right = study.images()
    assert left.dtype == np.uint8 and left.shape == right.shape


def test_selection_chart_says_when_there_are_no_answers(tmp_path):
    fig = us.fig_selection(us.tally(tmp_path / "none.csv", ["a", "b"]))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["no answers\nyet", "no answers\nyet"]
