"""mosslib.data.sampling: seeded splits, nested limited labels, stateless crop samplers, tensor conversion."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mosslib.data.layouts import DataError, DataWarning, Pair
from mosslib.data.imageio import ImageError
from mosslib.data.sampling import (
    Prefetcher,
    LABEL_FRACTIONS, ImageBank, ImageSampler, PairSampler, limited_labels, to_tensor, to_uint8_image,
    validation_split,
)


def fake_pairs(n: int) -> list[Pair]:
    return [Pair(f"img{i}", Path(f"/nowhere/rain/img{i}.png"), Path(f"/nowhere/norain/img{i}.png")) for i in range(n)]


def write_pairs(folder: Path, n: int, h: int = 40, w: int = 48) -> list[Pair]:
    """Pairs whose clean image is the exact negative of the rainy one (checks crop alignment)."""
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(n):
        img = rng.integers(0, 256, (h + i, w + 2 * i, 3), dtype=np.uint8)
        (folder / "rain").mkdir(parents=True, exist_ok=True)
        (folder / "norain").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / "rain" / f"{i}.png")
        Image.fromarray(255 - img).save(folder / "norain" / f"{i}.png")
        pairs.append(Pair(str(i), folder / "rain" / f"{i}.png", folder / "norain" / f"{i}.png"))
    return pairs


# --- splits -----------------------------------------------------------------------------------


def test_validation_split_deterministic_disjoint_order_free():
    pairs = fake_pairs(50)
    train, val = validation_split(pairs, 0.1, seed=3)
    assert len(val) == 5 and len(train) == 45
    assert {p.name for p in train} | {p.name for p in val} == {p.name for p in pairs}
    assert not {p.name for p in train} & {p.name for p in val}
    assert validation_split(pairs, 0.1, seed=3) == (train, val)
    assert validation_split(pairs[::-1], 0.1, seed=3)[1] == val[::-1]  # the same items, whatever the order
    assert validation_split(pairs, 0.1, seed=4)[1] != val
    assert len(validation_split(fake_pairs(3), 0.01, 0)[1]) == 1  # at least one
    assert validation_split(fake_pairs(3), 0.0, 0)[1] == []
    with pytest.raises(ValueError):
        validation_split(pairs, 1.0, 0)


def test_limited_labels_nested_and_sized():
    pairs = fake_pairs(200)
    previous: set[str] = set()
    for fraction in LABEL_FRACTIONS:
        d_l, d_u = limited_labels(pairs, fraction, seed=7)
        names = {p.name for p in d_l}
        assert len(d_l) == round(200 * fraction) and len(d_l) + len(d_u) == 200
        assert not names & {p.name for p in d_u}
        assert previous <= names  # a larger D_L contains the smaller ones
        previous = names
    assert limited_labels(pairs, 1.0, 7)[1] == []
    assert {p.name for p in limited_labels(pairs, 0.1, 8)[0]} != {p.name for p in limited_labels(pairs, 0.1, 7)[0]}
    assert len(limited_labels(fake_pairs(5), 0.1, 0)[0]) == 1
    with pytest.raises(ValueError):
        limited_labels(pairs, 0.0, 0)


# --- bank and samplers ------------------------------------------------------------------------


def test_pair_sampler_aligned_deterministic_stateless(tmp_path):
    pairs = write_pairs(tmp_path, 5)
    bank = ImageBank(pairs)
    assert bank.paired and len(bank) == 5
    s = PairSampler(bank, crop=32, batch_size=4, seed=1)
    x, y = s.batch(3)
    assert x.shape == y.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert torch.allclose(x, -y, atol=1e-6)  # the same window (and flip) in rainy and clean
    again = PairSampler(pairs, crop=32, batch_size=4, seed=1)
    for _ in again.stream(0):  # consuming steps changes nothing: batch(3) depends on (seed, 3) only
        break
    assert torch.equal(again.batch(3)[0], x)
    assert not torch.equal(s.batch(4)[0], x)
    assert not torch.equal(PairSampler(bank, 32, 4, seed=2).batch(3)[0], x)


def test_with_batch_size_shares_the_bank_and_keeps_the_sequence(tmp_path):
    s = PairSampler(write_pairs(tmp_path, 5), crop=16, batch_size=2, seed=3)
    x2 = s.batch(0)[0]
    wide = s.with_batch_size(4)
    assert wide.bank is s.bank and wide.batch_size == 4 and s.batch_size == 2
    x4 = wide.batch(0)[0]
    assert x4.shape[0] == 4 and torch.equal(x4[:2], x2)  # samples 0, 1 of the same sequence and windows
    assert np.array_equal(wide.indices(1), np.concatenate([s.indices(2), s.indices(3)]))
    assert torch.equal(s.batch(0)[0], x2)  # the original is untouched
    u = ImageSampler(s.bank, crop=16, batch_size=2, seed=4).with_batch_size(3)
    assert u.batch(1).shape == (3, 3, 16, 16)
    with pytest.raises(ValueError, match="batch_size"):
        s.with_batch_size(0)


def test_epochs_visit_every_image_once(tmp_path):
    s = PairSampler(write_pairs(tmp_path, 6), crop=16, batch_size=4, seed=0)
    seen = np.concatenate([s.indices(k) for k in range(3)])  # 12 samples = 2 epochs
    assert sorted(seen[:6]) == list(range(6)) and sorted(seen[6:]) == list(range(6))
    assert not np.array_equal(seen[:6], seen[6:])


def test_flip_is_a_mirror_of_the_same_crop(tmp_path):
    bank = ImageBank(write_pairs(tmp_path, 3))
    flipped = PairSampler(bank, 24, 8, seed=5, flip=True)
    plain = PairSampler(bank, 24, 8, seed=5, flip=False)
    n_flipped = 0
    for step in range(3):
        a, b = flipped.batch(step)[0], plain.batch(step)[0]
        for i in range(a.shape[0]):
            if torch.equal(a[i], b[i].flip(-1)) and not torch.equal(a[i], b[i]):
                n_flipped += 1
            else:
                assert torch.equal(a[i], b[i])
    assert 0 < n_flipped < 24


def test_small_images_are_padded_or_refused(tmp_path):
    pairs = write_pairs(tmp_path, 2, h=20, w=10)
    with pytest.warns(DataWarning, match="reflect-padded"):
        s = PairSampler(pairs, crop=32, batch_size=2, seed=0)
    x, y = s.batch(0)
    assert x.shape == (2, 3, 32, 32) and torch.allclose(x, -y, atol=1e-6)
    with pytest.raises(DataError, match="smaller than the 32x32 crop"):
        PairSampler(pairs, crop=32, batch_size=2, seed=0, small="error")


def test_image_sampler_and_bad_files(tmp_path):
    pairs = write_pairs(tmp_path, 3)
    bad = tmp_path / "rain" / "bad.png"
    bad.write_bytes((tmp_path / "rain" / "0.png").read_bytes()[:100])
    paths = [p.rainy for p in pairs] + [bad]
    with pytest.raises(ImageError, match="bad.png"):
        ImageBank(paths)
    with pytest.warns(DataWarning, match="bad.png"):
        bank = ImageBank(paths, skip_bad=True)
    assert len(bank) == 3 and not bank.paired and len(bank.skipped) == 1
    s = ImageSampler(bank, crop=16, batch_size=5, seed=9)
    x = s.batch(2)
    assert x.shape == (5, 3, 16, 16) and torch.equal(x, ImageSampler(paths[:3], 16, 5, seed=9).batch(2))
    assert ImageSampler(pairs, 16, 2, seed=0).batch(0).shape == (2, 3, 16, 16)  # rainy images of pairs
    with pytest.raises(DataError, match="paired"):
        PairSampler(bank, 16, 2, seed=0)


def test_tensor_round_trip():
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    t = to_tensor(img)
    assert t.shape == (3, 5, 7) and t.min() >= -1 and t.max() <= 1
    assert np.array_equal(to_uint8_image(t), img) and np.array_equal(to_uint8_image(t[None]), img)
    assert to_uint8_image(torch.full((3, 2, 2), 3.0)).max() == 255  # clamped
    assert to_uint8_image(torch.full((3, 2, 2), -0.999)).max() == 0  # rounded, not truncated: 0.1275 -> 0
    assert to_uint8_image(torch.full((3, 1, 1), 0.0))[0, 0, 0] == 128  # 127.5 rounds to even 128


def test_prefetcher_yields_in_order_and_reraises():
    made = []

    def make(step):
        made.append(step)
        if step == 7:
            raise ValueError("bad batch 7")
        return step * 10

    with Prefetcher(make, start=3, depth=2) as pf:
        assert [pf.get(s) for s in range(3, 7)] == [30, 40, 50, 60]
        with pytest.raises(ValueError, match="expected step 7"):
            pf.get(9)  # out of order
        with pytest.raises(ValueError, match="bad batch 7"):
            pf.get(7)
    assert made[0] == 3 and made == sorted(made)
    assert not pf._thread.is_alive()
