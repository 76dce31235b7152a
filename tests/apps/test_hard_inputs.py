"""Hard inputs for ``derain``: broken files, odd modes and sizes, huge images, bad checkpoints.

Out-of-band peak-memory measurement (not a test; a real-size model, takes minutes on CPU):
``.venv/bin/python tests/apps/test_hard_inputs.py --measure 4000x3000`` runs
``python -m mosslib derain`` on a synthetic JPEG of that size with a default-configuration
MOEDN (random weights: memory does not depend on their values) and prints the peak RSS.
"""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mosslib.apps.derain as D
from mosslib.method.checkpoint import CheckpointError, save_model
from mosslib.apps.cli import main
from mosslib.model.config import ModelConfig, to_dict
from mosslib.data.imageio import ImageError
from mosslib.model.network import MOEDN
from mosslib.apps.photo import read_photo, to_array

REPO = Path(__file__).resolve().parents[2]
TINY = ModelConfig(ngf=8, delta=8, num_blocks=3, num_scales=2, num_layers=1, memory_items=16)
EXIF_ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    model = MOEDN(TINY).eval()
    return model, save_model(model, tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def picture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w, 1), yy * 255 // max(h, 1), (xx + yy) % 256], axis=2)
    return np.clip(base + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def cli(*args):
    return main(["derain", *map(str, args), "-q"])


# -- broken files -----------------------------------------------------------------------------
def broken_files(folder: Path) -> dict[str, str]:
    """name -> a phrase its error message must contain."""
    good = folder / "good.png"
    Image.fromarray(picture(40, 50)).save(good)
    data = good.read_bytes()
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    idat = data.index(b"IDAT") + 4  # flip bytes inside the compressed pixel data
    flipped = bytes(b ^ 0x5A for b in data[idat : idat + 64])
    (folder / "corrupt.png").write_bytes(data[:idat] + flipped + data[idat + 64 :])
    (folder / "text.png").write_text("this is a text file, not a PNG\n")
    Image.fromarray(picture(8, 8)).save(folder / "anim.gif")
    (folder / "data.xyz").write_bytes(os.urandom(300))
    return {
        "empty.png": "empty file",
        "truncated.png": "truncated",
        "corrupt.png": "unreadable",
        "text.png": "not an image",
        "anim.gif": "unsupported format GIF",
        "data.xyz": "not an image",
    }


def test_broken_files_fail_clearly_and_the_batch_goes_on(tiny, tmp_path, capsys):
    _, ckpt = tiny
    src = tmp_path / "in"
    src.mkdir()
    expected = broken_files(src)
    names = ["empty.png", "truncated.png", "good.png", "corrupt.png", "text.png", "anim.gif", "data.xyz"]
    rc = cli(*[src / n for n in names], "-o", tmp_path / "out", "--checkpoint", ckpt)
    captured = capsys.readouterr()
    assert rc == 1
    assert "derained 1 of 7" in captured.out
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.png"]
    failures = [line for line in captured.err.splitlines() if line.startswith("  ")]
    assert len(failures) == 6
    for name, phrase in expected.items():
        line = next(f for f in failures if f"{name}:" in f)
        assert phrase in line.split(f"{name}:", 1)[1], line  # the reason, after the file name


@pytest.mark.parametrize("name", ["empty.png", "truncated.png", "corrupt.png", "text.png", "anim.gif", "data.xyz"])
def test_read_photo_names_the_broken_file(name, tmp_path):
    phrase = broken_files(tmp_path)[name]
    with pytest.raises(ImageError) as info:
        read_photo(tmp_path / name)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / name}: ") and phrase in message.split(": ", 1)[1], message


def test_a_folder_and_a_missing_file(tmp_path):
    with pytest.raises(ImageError, match="is a folder"):
        read_photo(tmp_path)
    with pytest.raises(ImageError, match="no such file"):
        read_photo(tmp_path / "missing.png")


# -- modes, bit depths, orientation, sizes -----------------------------------------------------
def derain_file(ckpt, src: Path, tmp_path: Path) -> Path:
    assert cli(src, "-o", tmp_path / "out", "--checkpoint", ckpt) == 0
    return tmp_path / "out" / src.name


def test_grayscale_stays_grayscale(tiny, tmp_path):
    model, ckpt = tiny
    gray = np.asarray(Image.fromarray(picture(30, 41)).convert("L"))
    Image.fromarray(gray).save(tmp_path / "g.png")
    out = Image.open(derain_file(ckpt, tmp_path / "g.png", tmp_path))
    assert out.mode == "L" and out.size == (41, 30)
    np.testing.assert_array_equal(np.asarray(out), D.derain(gray, model))


def test_rgba_keeps_its_alpha(tiny, tmp_path):
    model, ckpt = tiny
    alpha = np.random.default_rng(3).integers(0, 256, (30, 41, 1), dtype=np.uint8)
    rgba = np.concatenate([picture(30, 41), alpha], axis=2)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    out = np.asarray(Image.open(derain_file(ckpt, tmp_path / "a.png", tmp_path)))
    assert out.shape == (30, 41, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    np.testing.assert_array_equal(out[..., :3], D.derain(rgba[..., :3], model))


def test_palette_image_comes_back_full_colour(tiny, tmp_path):
    model, ckpt = tiny
    img = Image.fromarray(picture(20, 20)).convert("P")
    img.save(tmp_path / "p.png")
    out = Image.open(derain_file(ckpt, tmp_path / "p.png", tmp_path))
    assert out.mode == "RGB" and out.format == "PNG"
    np.testing.assert_array_equal(np.asarray(out), D.derain(np.asarray(img.convert("RGB")), model))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16_bit_png_stays_16_bit(tiny, tmp_path, channels):
    model, ckpt = tiny
    from mosslib.apps.photo import from_array, write_photo

    rng = np.random.default_rng(channels)
    deep = (picture(19, 23).astype(np.uint16) * 257 + rng.integers(0, 257, (19, 23, 3))).astype(np.uint16)
    arr = {1: deep[..., :1], 3: deep, 4: np.concatenate([deep, deep[..., :1]], axis=2)}[channels]
    write_photo(tmp_path / "d.png", from_array(arr), format="PNG")
    out_path = derain_file(ckpt, tmp_path / "d.png", tmp_path)
    photo = read_photo(out_path)
    assert photo.bits == 16 and to_array(photo).shape == arr.shape
    if channels == 1:
        assert Image.open(out_path).mode == "I;16"
    np.testing.assert_array_equal(to_array(photo), D.derain(arr, model))
    if channels == 4:
        np.testing.assert_array_equal(photo.alpha, arr[..., 3])
    assert (to_array(photo) % 257 != 0).any()  # 16-bit precision kept, not 8-bit scaled


def test_exif_orientation_is_honoured(tiny, tmp_path):
    model, ckpt = tiny
    stored = picture(24, 40)  # landscape as stored; orientation 8: display rotated 90 degrees left
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 8
    Image.fromarray(stored).save(tmp_path / "r.png", exif=exif.tobytes())
    out = Image.open(derain_file(ckpt, tmp_path / "r.png", tmp_path))
    assert out.size == (24, 40)  # upright: portrait
    assert out.getexif().get(EXIF_ORIENTATION) in (None, 1)
    np.testing.assert_array_equal(np.asarray(out), D.derain(np.ascontiguousarray(np.rot90(stored)), model))


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (5, 7), (1, 30)])
def test_tiny_images(tiny, tmp_path, size):
    _, ckpt = tiny
    h, w = size
    Image.fromarray(picture(h, w)).save(tmp_path / "t.png")
    Image.fromarray(picture(h, w)).save(tmp_path / "t.jpg", quality=95)
    for name in ("t.png", "t.jpg"):
        out = Image.open(derain_file(ckpt, tmp_path / name, tmp_path))
        assert out.size == (w, h)


HUGE_SCRIPT = r"""
import resource, sys, numpy as np, torch
from torch import nn
torch.set_num_threads(1)
import mosslib.apps.derain as D

class Cheap(nn.Module):  # stands in for the network: the point is the tiler's memory
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(-0.5))
        self.largest = 0
    def forward(self, x):
        self.largest = max(self.largest, x.shape[-2] * x.shape[-1])
        return x * self.w

h, w = 8000, 12000
img = np.zeros((h, w, 3), np.uint8)
img[::7] = 200
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model = Cheap()
out = D.derain(img, model)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ok = out.shape == img.shape and out[0, 0, 0] == 91 and out[1, 0, 0] == 191
print(peak // 1024, base // 1024, model.largest, ok)
"""


@pytest.mark.slow
def test_12000x8000_is_tiled_in_bounded_memory():
    """96 Mpixel through derain() in a fresh process: peak RSS stays far below a float copy (1.1 GB)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", HUGE_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    peak_mb, base_mb, largest, ok = proc.stdout.split()
    assert ok == "True"
    assert int(largest) <= 512 * 512
    # base already holds torch and the 288 MB input; the output adds 288 MB; the tiler must add little
    assert int(peak_mb) < 2048 and int(peak_mb) - int(base_mb) < 288 + 400, proc.stdout


# -- checkpoints -------------------------------------------------------------------------------
class Trap:
    """Unpickling this would create a marker file: weights_only=True must refuse it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def bad_checkpoint(kind: str, tmp_path: Path, tiny_model) -> tuple[Path, str]:
    """A bad checkpoint file and a phrase its error must contain."""
    path = tmp_path / f"{kind}.pt"
    if kind == "other-config":  # weights of one configuration stored under another
        wider = ModelConfig(ngf=12, delta=8, num_blocks=3, num_scales=2, num_layers=1, memory_items=16)
        save_model(tiny_model, path, config=to_dict(wider))
        return path, "do not match"
    if kind == "unknown-config":  # a configuration field this mosslib does not know
        save_model(tiny_model, path, config={**to_dict(TINY), "attention_heads": 4})
        return path, "no valid model configuration"
    if kind == "truncated":
        data = save_model(tiny_model, tmp_path / "whole.pt").read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path, "not a readable checkpoint"
    if kind == "text":
        path.write_text("model weights: see the README\n")
        return path, "not a readable checkpoint"
    if kind == "image":
        Image.fromarray(picture(8, 8)).save(path, format="PNG")
        return path, "not a readable checkpoint"
    if kind == "state-dict":  # a bare torch.save(model.state_dict())
        torch.save(tiny_model.state_dict(), path)
        return path, "not a mosslib checkpoint"
    if kind == "pickle":
        torch.save({"format": "mosslib", "trap": Trap(tmp_path / "PWNED")}, path)
        return path, "refused: weights_only=True"
    if kind == "plain-pickle":
        path.write_bytes(pickle.dumps(Trap(tmp_path / "PWNED"), protocol=2))
        return path, "not a readable checkpoint"
    if kind == "empty":
        path.write_bytes(b"")
        return path, "empty"
    raise AssertionError(kind)


KINDS = [
    "other-config", "unknown-config", "truncated", "text", "image", "state-dict", "pickle", "plain-pickle", "empty"
]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_checkpoints_are_clear_errors_through_cli_and_api(kind, tiny, tmp_path, capsys):
    model, _ = tiny
    path, phrase = bad_checkpoint(kind, tmp_path, model)
    Image.fromarray(picture(9, 9)).save(tmp_path / "a.png")
    rc = cli(tmp_path / "a.png", "-o", tmp_path / "out", "--checkpoint", path)
    err = capsys.readouterr().err
    assert rc == 2
    assert str(path) in err and phrase in err, err
    assert not (tmp_path / "out" / "a.png").exists()
    with pytest.raises(CheckpointError, match=phrase) as info:
        D.derain(picture(9, 9), path)
    assert str(path) in str(info.value)
    assert not (tmp_path / "PWNED").exists()  # no pickle ran


def test_a_checkpoint_of_another_valid_configuration_just_works(tmp_path):
    """"Another configuration" stored consistently is no error: the network is built from it."""
    cfg = ModelConfig(ngf=4, delta=4, num_blocks=2, num_scales=1, num_layers=1, memory_items=8, use_skip=False)
    model = MOEDN(cfg).eval()
    path = save_model(model, tmp_path / "other.pt")
    out = D.derain(picture(11, 13), path)
    assert out.shape == (11, 13, 3)


# -- out-of-band measurement -------------------------------------------------------------------
def measure(size: str, config: str = "default") -> None:
    """Peak RSS of ``python -m mosslib derain`` on a synthetic JPEG of ``size`` (WxH)."""
    import resource
    import tempfile
    import time

    w, h = map(int, size.lower().split("x"))
    cfg = ModelConfig() if config == "default" else TINY
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        Image.fromarray(picture(h, w)).save(tmp / "photo.jpg", quality=92)
        save_model(MOEDN(cfg).eval(), tmp / "model.pt")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "mosslib", "derain", str(tmp / "photo.jpg"), "-o", str(tmp / "out"),
             "--checkpoint", str(tmp / "model.pt"), "-q"],
            env=env, capture_output=True, text=True,
        )
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(proc.stdout.strip(), proc.stderr.strip(), sep="\n")
        print(f"{w}x{h} JPEG, {config} ModelConfig, torch threads {torch.get_num_threads()}: "
              f"peak RSS {peak:.0f} MB, wall {seconds:.0f} s, exit {proc.returncode}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="peak memory of the derain command (out of band)")
    parser.add_argument("--measure", default="4000x3000", metavar="WxH")
    parser.add_argument("--config", default="default", choices=["default", "tiny"])
    args = parser.parse_args()
    measure(args.measure, args.config)
