"""mosslib.data.layouts: layout detection on tiny fabricated trees, bad input, and the real data when present."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mosslib.apps import cli
from mosslib.data.layouts import (
    DataError, DataWarning, Pair, drop_labels, high_frequency_energy, natural_key, open_dataset,
)
from mosslib.data.imageio import ImageError
from mosslib.data.rain import render_rain

SHARED = Path(os.environ.get("DATA_ROOT") or Path(__file__).resolve().parents[3] / "shared" / "data")


def _photo() -> np.ndarray:
    from skimage import data

    return data.astronaut()[::4, ::4]  # (128, 128, 3)


PHOTO = _photo()


def clean_img(i: int, h: int = 32, w: int = 40) -> np.ndarray:
    """A distinct natural-looking crop per index."""
    y, x = (7 * i) % (128 - h), (11 * i) % (128 - w)
    return np.ascontiguousarray(PHOTO[y : y + h, x : x + w])


def rainy_img(i: int, h: int = 32, w: int = 40) -> np.ndarray:
    return render_rain(clean_img(i, h, w), "synthetic", seed=i, density=0.02)[0]


def save(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def make_sirr(root: Path, n: int = 12, real: int = 3) -> Path:
    for i in range(1, n + 1):
        save(root / "input_val" / f"input{i}.png", rainy_img(i))
        save(root / "label_val" / f"norain{i}.png", clean_img(i))
    for i in range(1, real + 1):
        save(root / "real_input" / f"{i}.jpg", rainy_img(100 + i))
    return root


# ---------------------------------------------------------------------------------------------


def test_natural_key_orders_numbers_as_numbers():
    names = ["input10", "input2", "input1", "norain-100", "norain-20", "norain-3"]
    assert sorted(names, key=natural_key) == ["input1", "input2", "input10", "norain-3", "norain-20", "norain-100"]


def test_ddn_sirr_dense_sparse_and_real(tmp_path):
    ds = open_dataset(make_sirr(tmp_path / "sirr"))
    assert ds.layout == "ddn-sirr"
    assert ds.summary()["splits"] == {"dense": {"pairs": 10, "unlabeled": 0}, "sparse": {"pairs": 2, "unlabeled": 0},
                                      "real": {"pairs": 0, "unlabeled": 3}}
    dense = ds.split("dense").pairs
    assert [p.name for p in dense][:3] == ["input1", "input2", "input3"] and dense[-1].name == "input10"
    assert all(p.clean.name == p.rainy.name.replace("input", "norain") for p in dense)
    groups = ds.test_groups()
    assert list(groups) == ["dense", "sparse"] and [p.name for p in groups["sparse"]] == ["input11", "input12"]
    rainy, clean = dense[1].load()
    assert rainy.shape == clean.shape == (32, 40, 3) and rainy.dtype == np.uint8
    with pytest.raises(DataError, match="dense"):
        ds.split("nope")
    # the unlabeled real images alone
    real = open_dataset(tmp_path / "sirr" / "real_input")
    assert real.layout == "unlabeled" and len(real.split("all").unlabeled) == 3


@pytest.mark.filterwarnings("ignore::mosslib.data.layouts.DataWarning")
def test_ddn_sirr_beyond_20_is_one_group(tmp_path):
    ds = open_dataset(make_sirr(tmp_path / "sirr", n=22, real=0))
    assert list(ds.splits) == ["all"] and list(ds.test_groups()) == ["all"]
    assert len(ds.test_groups()["all"]) == 22 and ds.warnings


def test_ddn_layout(tmp_path):
    for i in (1, 2, 10):
        save(tmp_path / "ground_truth" / f"{i}.jpg", clean_img(i))
        for k in (1, 2, 14):
            save(tmp_path / "rainy_image" / f"{i}_{k}.jpg", rainy_img(i))
    ds = open_dataset(tmp_path)
    assert ds.layout == "ddn" and list(ds.splits) == ["all"]
    pairs = ds.split("all").pairs
    assert [p.name for p in pairs][:4] == ["1_1", "1_2", "1_14", "2_1"] and len(pairs) == 9
    assert all(p.clean.stem == p.name.split("_")[0] for p in pairs)


def test_rain200_with_splits(tmp_path):
    for split, ids in (("train", (1, 2, 3)), ("test", (1, 2))):
        for i in ids:
            save(tmp_path / split / "rain" / "X2" / f"norain-{i}x2.png", rainy_img(i))
            save(tmp_path / split / "norain" / f"norain-{i}.png", clean_img(i))
    ds = open_dataset(tmp_path)
    assert ds.layout == "rain200"
    assert ds.summary()["splits"] == {"train": {"pairs": 3, "unlabeled": 0}, "test": {"pairs": 2, "unlabeled": 0}}
    p = ds.split("test").pairs[1]
    assert p.rainy.name == "norain-2x2.png" and p.clean.name == "norain-2.png"
    assert list(ds.test_groups()) == ["all"] and len(ds.test_groups()["all"]) == 2


def test_rain100_prenet_layouts(tmp_path):
    a = tmp_path / "Rain100H"
    for i in (1, 2, 10):
        save(a / f"norain-{i:03d}.png", clean_img(i))
        save(a / "rainy" / f"rain-{i:03d}.png", rainy_img(i))
    ds = open_dataset(a)
    assert ds.layout == "rain100" and [p.name for p in ds.split("all").pairs] == ["rain-001", "rain-002", "rain-010"]
    assert ds.split("all").pairs[2].clean.name == "norain-010.png"
    b = tmp_path / "RainTrainH"  # PReNet's training folder: both in one folder
    for i in (1, 2):
        save(b / f"norain-{i}.png", clean_img(i))
        save(b / f"rain-{i}.png", rainy_img(i))
    ds = open_dataset(b)
    assert ds.layout == "rain100" and len(ds.split("all").pairs) == 2


@pytest.mark.parametrize("names", [("rain", "norain"), ("input", "target")])
def test_folder_pairs_with_and_without_splits(tmp_path, names):
    for split, ids in (("train", (1, 2, 10)), ("test", (3,))):
        for i in ids:
            save(tmp_path / split / names[0] / f"norain-{i}.png", rainy_img(i))
            save(tmp_path / split / names[1] / f"norain-{i}.png", clean_img(i))
    ds = open_dataset(tmp_path)
    assert ds.layout == "folder-pairs" and list(ds.splits) == ["train", "test"]
    assert [p.name for p in ds.split("train").pairs] == ["norain-1", "norain-2", "norain-10"]
    flat = open_dataset(tmp_path / "train")
    assert list(flat.splits) == ["all"] and len(flat.split("all").pairs) == 3


def test_folder_pairs_match_by_stem_across_extensions(tmp_path):
    save(tmp_path / "rain" / "a.jpg", rainy_img(1))
    save(tmp_path / "norain" / "a.png", clean_img(1))
    ds = open_dataset(tmp_path)
    assert ds.split("all").pairs[0].clean.name == "a.png"


def _side_by_side(folder: Path, rainy_left: bool, n: int = 3) -> Path:
    for i in range(n):
        r, c = rainy_img(i, 40, 40), clean_img(i, 40, 40)
        save(folder / f"{i}.png", np.concatenate([r, c] if rainy_left else [c, r], axis=1))
    return folder


def test_side_by_side_default_order_per_data_set(tmp_path):
    did = open_dataset(_side_by_side(tmp_path / "Rain1200" / "train", rainy_left=True), layout="side-by-side")
    r800 = open_dataset(_side_by_side(tmp_path / "Rain800" / "training", rainy_left=False), layout="side-by-side")
    for ds in (did, r800):
        assert ds.layout == "side-by-side" and not ds.warnings
        rainy, clean = ds.split("all").pairs[0].load()
        assert rainy.shape == clean.shape == (40, 40, 3)
        assert high_frequency_energy(rainy) > high_frequency_energy(clean)
        assert np.array_equal(clean, clean_img(0, 40, 40))
    assert did.split("all").pairs[0].half == "left" and r800.split("all").pairs[0].half == "right"


@pytest.mark.filterwarnings("ignore:.*guessed:mosslib.data.layouts.DataWarning")
def test_side_by_side_is_detected_and_wrong_order_warns(tmp_path):
    folder = _side_by_side(tmp_path / "pairs_in_one", rainy_left=True)
    ds = open_dataset(folder)  # detected from content, order guessed with a warning
    assert ds.layout == "side-by-side" and ds.split("all").pairs[0].half == "left"
    assert any("guessed" in w for w in ds.warnings)
    with pytest.warns(DataWarning, match="more high-frequency energy"):
        wrong = open_dataset(folder, order="rainy-right")
    assert wrong.split("all").pairs[0].half == "right"
    with pytest.raises(DataError, match="order"):
        open_dataset(folder, order="upside-down")


def test_rain800_root_with_split_folders(tmp_path):
    root = tmp_path / "Rain800"
    _side_by_side(root / "training", rainy_left=False, n=3)
    _side_by_side(root / "test_syn", rainy_left=False, n=2)
    for i in range(2):
        save(root / "test_nature" / f"{i}.jpg", rainy_img(50 + i, 32, 48))
    for layout in (None, "rain800"):
        ds = open_dataset(root, layout=layout)
        assert ds.layout == "side-by-side" and not ds.warnings
        assert ds.summary()["splits"] == {"train": {"pairs": 3, "unlabeled": 0}, "test": {"pairs": 2, "unlabeled": 0},
                                          "real": {"pairs": 0, "unlabeled": 2}}
        assert {p.half for p in ds.split("train").pairs} == {"right"}
        assert len(ds.test_groups()["all"]) == 2


def test_plain_folder_is_unlabeled(tmp_path):
    for i in range(4):
        save(tmp_path / "real" / f"photo{i}.png", rainy_img(i, 32, 64))
    ds = open_dataset(tmp_path / "real")
    assert ds.layout == "unlabeled" and ds.summary()["splits"] == {"all": {"pairs": 0, "unlabeled": 4}}
    with pytest.raises(DataError, match="no pairs"):
        ds.test_groups()


# --- bad input --------------------------------------------------------------------------------


def test_missing_empty_and_unknown(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        open_dataset(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        open_dataset(tmp_path / "empty")
    (tmp_path / "odd" / "stuff").mkdir(parents=True)
    (tmp_path / "odd" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="unknown layout") as err:
        open_dataset(tmp_path / "odd")
    assert str(tmp_path / "odd") in str(err.value)
    with pytest.raises(DataError, match="unknown layout"):
        open_dataset(tmp_path, layout="nonsense")


def test_missing_partner_and_empty_file(tmp_path):
    save(tmp_path / "rain" / "a.png", rainy_img(1))
    save(tmp_path / "norain" / "a.png", clean_img(1))
    save(tmp_path / "rain" / "b.png", rainy_img(2))  # no clean b
    with pytest.raises(DataError, match="b.png: no ground truth"):
        open_dataset(tmp_path)
    with pytest.warns(DataWarning, match="b.png"):
        ds = open_dataset(tmp_path, skip_bad=True)
    assert [p.name for p in ds.split("all").pairs] == ["a"]
    save(tmp_path / "norain" / "b.png", clean_img(2))
    (tmp_path / "rain" / "c.png").write_bytes(b"")
    (tmp_path / "norain" / "c.png").write_bytes(b"")
    with pytest.raises(DataError, match="c.png: empty file"):
        open_dataset(tmp_path)


def test_truncated_image_and_size_mismatch(tmp_path):
    save(tmp_path / "rain" / "a.png", rainy_img(1))
    save(tmp_path / "norain" / "a.png", clean_img(1))
    save(tmp_path / "rain" / "big.png", rainy_img(2, 40, 48))
    save(tmp_path / "norain" / "big.png", clean_img(2, 32, 40))
    p = save(tmp_path / "rain" / "cut.png", rainy_img(3))
    save(tmp_path / "norain" / "cut.png", clean_img(3))
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    pairs = {q.name: q for q in open_dataset(tmp_path).split("all").pairs}
    with pytest.raises(ImageError, match="cut.png"):
        pairs["cut"].load()
    with pytest.raises(ImageError, match="sizes differ") as err:
        pairs["big"].load()
    assert "rain/big.png" in str(err.value) and "norain/big.png" in str(err.value)
    with pytest.raises(DataError, match="sizes differ"):
        open_dataset(tmp_path, verify=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        ok = open_dataset(tmp_path, verify=True, skip_bad=True)
    assert [q.name for q in ok.split("all").pairs] == ["a", "cut"]  # header checks cannot see truncation
    assert len(open_dataset(tmp_path).verify(decode=True)) == 2


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_odd_modes_load_as_rgb8(tmp_path, mode):
    c = clean_img(1)
    if mode == "I;16":
        img = Image.fromarray((c[..., 0].astype(np.uint16) * 257))
    elif mode == "RGBA":
        img = Image.fromarray(np.dstack([c, np.full(c.shape[:2], 255, np.uint8)]))
    else:
        img = Image.fromarray(c).convert(mode)
    img.save(tmp_path / "x.png")
    save(tmp_path / "y.png", c)
    rainy, clean = Pair("x", tmp_path / "x.png", tmp_path / "y.png").load()
    assert rainy.dtype == np.uint8 and rainy.shape == (32, 40, 3)
    if mode == "I;16":
        assert np.array_equal(rainy[..., 1], c[..., 0])
    if mode == "RGBA":
        assert np.array_equal(rainy, c)


def test_drop_labels_keeps_rainy_half(tmp_path):
    ds = open_dataset(_side_by_side(tmp_path / "rain800", rainy_left=False))
    unl = drop_labels(ds.split("all").pairs)
    assert all(p.clean is None and not p.labeled for p in unl)
    assert np.array_equal(unl[0].load_rainy(), ds.split("all").pairs[0].load()[0])
    with pytest.raises(ImageError, match="no ground truth"):
        unl[0].load()


# --- the command ------------------------------------------------------------------------------


def test_cli_json_and_errors(tmp_path, capsys):
    make_sirr(tmp_path / "sirr", n=4, real=2)
    assert cli.main(["datasets", str(tmp_path / "sirr"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"root": str(tmp_path / "sirr"), "layout": "ddn-sirr",
                   "splits": {"dense": {"pairs": 4, "unlabeled": 0}, "real": {"pairs": 0, "unlabeled": 2}}}
    assert cli.main(["datasets", str(tmp_path / "sirr")]) == 0
    assert "ddn-sirr" in capsys.readouterr().out
    assert cli.main(["datasets", str(tmp_path / "nothing")]) == 1
    assert "no such folder" in capsys.readouterr().err


# --- the real data (skipped when absent) ------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.skipif(not (SHARED / "DDN-SIRR").is_dir(), reason="shared DDN-SIRR data not present")
def test_real_ddn_sirr():
    ds = open_dataset(SHARED / "DDN-SIRR")
    assert ds.layout == "ddn-sirr"
    groups = ds.test_groups()
    assert [len(groups["dense"]), len(groups["sparse"])] == [10, 10]
    assert [p.name for p in groups["dense"]] == [f"input{i}" for i in range(1, 11)]
    assert len(ds.split("real").unlabeled) == 147


@pytest.mark.realdata
@pytest.mark.skipif(not (SHARED / "Rain100L").is_dir(), reason="shared Rain100L data not present")
def test_real_rain100l():
    ds = open_dataset(SHARED / "Rain100L")
    assert ds.layout == "folder-pairs"
    assert len(ds.split("train").pairs) == 200 and len(ds.test_groups()["all"]) == 100
    p = ds.split("test").pairs[0]
    assert p.rainy.name == p.clean.name == "norain-1.png"
