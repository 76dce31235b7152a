"""mosslib.data.embedded: the offline default data set builds deterministically, atomically, and loads."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from mosslib.data import embedded
from mosslib.data.layouts import open_dataset
from mosslib.measure.metrics import psnr


def _digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def default_root(tmp_path_factory):
    return embedded.ensure(tmp_path_factory.mktemp("cache"))


def test_default_layout_counts_and_difficulty(default_root):
    assert default_root.name == "embedded-v1" and (default_root / "README.txt").is_file()
    syn = open_dataset(default_root / "synthetic")
    assert syn.layout == "folder-pairs" and list(syn.splits) == ["train"]
    train = syn.split("train").pairs
    assert 48 <= len(train) <= 64
    sirr = open_dataset(default_root / "sirr_like")
    assert sirr.layout == "ddn-sirr" and not sirr.warnings
    groups = sirr.test_groups()
    assert [len(groups["dense"]), len(groups["sparse"])] == [10, 10]
    assert 24 <= len(sirr.split("real").unlabeled) <= 32
    rainy, clean = groups["dense"][0].load()
    assert 128 <= min(rainy.shape[:2]) and max(rainy.shape[:2]) <= 192
    dense = np.mean([psnr(*p.load()) for p in groups["dense"]])
    sparse = np.mean([psnr(*p.load()) for p in groups["sparse"]])
    assert dense + 3 < sparse  # dense rain is much harder


def test_test_photos_are_not_training_photos(default_root):
    manifest = json.loads((default_root / "BUILD.json").read_text())
    assert not set(manifest["train_photos"]) & set(manifest["test_photos"])
    train_names = {p.name.split("-")[0] for p in (default_root / "synthetic" / "train" / "norain").iterdir()}
    assert train_names == set(embedded.TRAIN_PHOTOS)
    # no test image is a crop of a training image's pixels: compare small colour statistics exactly
    test_clean = [p.load()[1] for p in open_dataset(default_root / "sirr_like").test_groups()["dense"]]
    train_clean = [p.load()[1] for p in open_dataset(default_root / "synthetic").split("train").pairs]
    assert not any(a.shape == b.shape and np.array_equal(a, b) for a in test_clean for b in train_clean)


def test_tiny_is_deterministic_and_cached(tmp_path):
    a = embedded.ensure(tmp_path / "a", size="tiny")
    b = embedded.ensure(tmp_path / "b", size="tiny")
    assert a.name == "embedded-v1-tiny" and _digest(a) == _digest(b)
    syn = open_dataset(a / "synthetic").split("train").pairs
    sirr = open_dataset(a / "sirr_like")
    assert len(syn) == 8 and syn[0].load()[0].shape == (48, 48, 3)
    assert {k: len(v) for k, v in sirr.test_groups().items()} == {"dense": 4, "sparse": 4}
    assert len(sirr.split("real").unlabeled) == 4
    stamp = (a / "BUILD.json").stat().st_mtime_ns
    assert embedded.ensure(tmp_path / "a", size="tiny") == a and (a / "BUILD.json").stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["embedded-v1-tiny"]  # no temporary folders left


def test_broken_tree_is_rebuilt_and_env_var_is_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("MOSSLIB_CACHE", str(tmp_path))
    stale = tmp_path / "embedded-v1-tiny"
    (stale / "synthetic").mkdir(parents=True)  # e.g. left by an old version: no BUILD.json
    (tmp_path / ".embedded-v1-tiny.tmp-999999999-deadbeef" / "x").mkdir(parents=True)  # a killed build's
    root = embedded.ensure(size="tiny")
    assert root == stale and (root / "BUILD.json").is_file()
    assert len(open_dataset(root / "synthetic").split("train").pairs) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embedded-v1-tiny"]
    with pytest.raises(ValueError, match="size"):
        embedded.ensure(size="huge")
