"""``mosslib.apps.derain`` (Python API) and ``python -m mosslib derain`` (files, folders, globs)."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

import mosslib
import mosslib.apps.derain as D
from mosslib.method import checkpoint as ckpt_mod
from mosslib.method.checkpoint import CheckpointError
from mosslib.apps.cli import main
from mosslib.model import fast
from mosslib.model.network import MOEDN

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny(tiny_moedn):
    """(model, checkpoint path) of a small MOEDN (conftest)."""
    return tiny_moedn


def scene(h, w, seed=0, rain=True):
    """A smooth synthetic picture, plus bright streaks when ``rain``: (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.4 * np.sin(6 * xx + 3 * yy), 0.4 + 0.3 * np.cos(5 * yy), 0.3 + 0.5 * xx * yy], axis=2)
    if rain:
        for _ in range(max(1, h * w // 400)):
            y, x = rng.integers(0, h), rng.integers(0, w)
            img[y : y + 6, x] += 0.35
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse) if mse > 0 else float("inf")


def manual(model, pixels, scale=127.5, top=255):
    """The documented mapping done by hand: x = u / scale - 1, network, back with rounding."""
    x = torch.from_numpy(pixels.astype(np.float32) / scale - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = model(x)[0].permute(1, 2, 0).numpy()
    return np.clip(np.rint((y + 1) * scale), 0, top).astype(pixels.dtype)


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Recorder(nn.Module):
    """A cheap stand-in network that remembers the tile shapes it saw: y = -x / 2."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(-0.5))
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return x * self.scale


# -- Python API -------------------------------------------------------------------------------
def test_numpy_in_numpy_out_matches_the_documented_mapping(tiny):
    model, path = tiny
    img = scene(37, 53)
    out = D.derain(img, path)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - manual(model, img).astype(int)).max() <= 1
    assert not np.array_equal(out, img)


def test_model_may_be_a_path_a_module_or_the_shipped_default(tiny, monkeypatch):
    model, path = tiny
    img = scene(20, 24)
    by_path, by_module = D.derain(img, path), D.derain(img, model)
    np.testing.assert_array_equal(by_path, by_module)
    monkeypatch.setattr(ckpt_mod, "SHIPPED", path)
    monkeypatch.setattr(D, "_DEFAULT_MODELS", {})
    np.testing.assert_array_equal(D.derain(img), by_path)
    monkeypatch.setattr(ckpt_mod, "SHIPPED", path.parent / "missing.pt")
    monkeypatch.setattr(D, "_DEFAULT_MODELS", {})
    with pytest.raises(CheckpointError, match="shipped model is missing"):
        D.derain(img)
    with pytest.raises(TypeError, match="model must be"):
        D.derain(img, model=42)


def test_package_attribute_is_callable(tiny):
    model, _ = tiny
    img = scene(9, 10)
    np.testing.assert_array_equal(mosslib.derain(img, model), D.derain(img, model))


def test_pil_in_pil_out(tiny):
    model, _ = tiny
    rgb = scene(15, 22)
    for mode, out_mode in (("RGB", "RGB"), ("L", "L"), ("RGBA", "RGBA"), ("LA", "LA"), ("P", "RGB")):
        img = Image.fromarray(rgb).convert(mode)
        if mode in ("RGBA", "LA"):
            img.putalpha(Image.fromarray(np.arange(15 * 22, dtype=np.uint8).reshape(15, 22)))
        out = D.derain(img, model)
        assert isinstance(out, Image.Image) and out.mode == out_mode and out.size == img.size
        if "A" in mode:
            np.testing.assert_array_equal(np.asarray(out)[..., -1], np.asarray(img)[..., -1])


def test_gray_alpha_and_16_bit_arrays(tiny):
    model, _ = tiny
    rgb = scene(17, 19)
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    out = D.derain(gray, model)
    assert out.shape == gray.shape and out.dtype == np.uint8
    expected = np.asarray(Image.fromarray(manual(model, np.repeat(gray[..., None], 3, 2))).convert("L"))
    assert np.abs(out.astype(int) - expected).max() <= 1  # derain the replicated RGB, fold back to luma
    rgba = np.concatenate([rgb, np.full((17, 19, 1), 77, np.uint8)], axis=2)
    out = D.derain(rgba, model)
    assert out.shape == rgba.shape and (out[..., 3] == 77).all()
    assert np.abs(out[..., :3].astype(int) - manual(model, rgb).astype(int)).max() <= 1
    deep = (rgb.astype(np.uint16) * 257 + np.random.default_rng(1).integers(0, 257, rgb.shape)).astype(np.uint16)
    out = D.derain(deep, model)
    assert out.dtype == np.uint16 and out.shape == deep.shape
    expected16 = manual(model, deep, 32767.5, 65535).astype(int)
    assert np.abs(out.astype(int) - expected16).max() <= 2
    assert (out % 257 != 0).any()  # really 16-bit values, not 8-bit ones scaled up


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([None, 0, 16, 24]))
def test_any_size_comes_back_the_same_size(tiny, h, w, tile):
    model, _ = tiny
    img = scene(h, w, seed=h * 41 + w)
    out = D.derain(img, model, tile=tile, overlap=4)
    assert out.shape == img.shape and out.dtype == np.uint8


def test_tiled_output_within_a_tenth_of_a_db_of_whole(tiny):
    model, _ = tiny
    clean, rainy = scene(150, 210, rain=False), scene(150, 210)
    whole = D.derain(rainy, model, tile=0)
    tiled = D.derain(rainy, model, tile=64, overlap=16)
    assert abs(psnr(tiled, clean) - psnr(whole, clean)) < 0.1
    assert psnr(tiled, whole) > 40


def test_large_images_are_tiled_automatically():
    rec = Recorder()
    img = np.full((1025, 1024, 3), 200, np.uint8)  # just above 1024 * 1024 pixels
    out = D.derain(img, rec)
    assert len(rec.shapes) > 1 and max(s[2] * s[3] for s in rec.shapes) <= 512 * 512
    np.testing.assert_array_equal(out, manual(rec, img[:1, :1]).repeat(1025, 0).repeat(1024, 1))
    rec.shapes.clear()
    D.derain(np.zeros((1024, 1024, 3), np.uint8), rec)
    assert rec.shapes == [(1, 3, 1024, 1024)]  # at the threshold: whole


def test_module_mode_and_memory_untouched(tiny):
    model, _ = tiny
    net = MOEDN(model.cfg)
    net.load_state_dict(model.state_dict())
    net.train()
    items = net.memory.items.clone()
    D.derain(scene(16, 16), net)
    assert net.training  # restored
    assert torch.equal(net.memory.items, items)  # eval mode: memory read, never updated


def test_bf16_is_close_to_fp32(tiny):
    model, _ = tiny
    img = scene(24, 40)
    fp32, bf16 = D.derain(img, model), D.derain(img, model, precision="bf16")
    assert bf16.shape == fp32.shape and psnr(bf16, fp32) > 30
    with pytest.raises(ValueError, match="precision"):
        D.derain(img, model, precision="fp8")


def test_bf16_uses_mosslib_fast_prepare(tiny, monkeypatch):
    model, _ = tiny
    calls = []

    def prepare(m, precision="fp32", device="cpu", compile=None):
        calls.append((m, precision, device))
        return lambda x: m(x)

    monkeypatch.setattr(fast, "prepare", prepare)
    out = D.derain(scene(8, 8), model, precision="bf16")
    assert calls == [(model, "bf16", "cpu")] and out.shape == (8, 8, 3)


def test_bad_images_for_the_api():
    with pytest.raises(TypeError, match="numpy array or a PIL image"):
        D.derain([[1, 2, 3]], Recorder())
    with pytest.raises(ValueError, match="uint8 or uint16"):
        D.derain(np.zeros((4, 4, 3), np.float32), Recorder())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error(tiny, tmp_path):
    _, path = tiny
    with pytest.raises(RuntimeError, match="CUDA"):
        D.derain(scene(8, 8), path, device="cuda")
    Image.fromarray(scene(8, 8)).save(tmp_path / "a.png")
    args = ["derain", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--checkpoint", str(path)]
    assert main(args + ["--device", "cuda"]) == 2


# -- command line -----------------------------------------------------------------------------
def make_inputs(root: Path) -> dict[str, str]:
    """A folder of photos in every supported format (+ a text file) and a second folder."""
    photos = root / "photos"
    photos.mkdir()
    formats = {"a.png": "PNG", "b.jpg": "JPEG", "c.bmp": "BMP", "d.tif": "TIFF", "e.webp": "WEBP"}
    for i, (name, fmt) in enumerate(formats.items()):
        Image.fromarray(scene(21 + i, 30 + 2 * i, seed=i)).save(photos / name, format=fmt)
    (photos / "notes.txt").write_text("not a photo")
    other = root / "other"
    other.mkdir()
    Image.fromarray(scene(12, 13)).save(other / "f.png")
    Image.fromarray(scene(12, 13)).save(other / "g.jpeg")
    return {**formats, "f.png": "PNG", "g.jpeg": "JPEG"}


def run_cli(*args):
    return main(["derain", *map(str, args), "-q"])


def test_files_folders_and_globs_keep_names_and_formats(tiny, tmp_path, capsys):
    _, path = tiny
    expected = make_inputs(tmp_path)
    before = {p: digest(p) for p in tmp_path.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    rc = run_cli(tmp_path / "photos", str(tmp_path / "other" / "*.png"), tmp_path / "other" / "g.jpeg",
                 "-o", out, "--checkpoint", path)
    assert rc == 0
    assert "derained 7 of 7" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)  # notes.txt: not an image suffix
    for name, fmt in expected.items():
        src = next(tmp_path.glob(f"*/{name}"))
        with Image.open(out / name) as res, Image.open(src) as orig:
            assert (res.format, res.size, res.mode) == (fmt, orig.size, orig.mode)
    assert {p: digest(p) for p in before} == before  # inputs untouched


def test_tiled_cli_equals_api(tiny, tmp_path):
    model, path = tiny
    img = scene(70, 90)
    Image.fromarray(img).save(tmp_path / "x.png")
    rc = run_cli(tmp_path / "x.png", "-o", tmp_path / "out", "--checkpoint", path, "--tile", "32", "--overlap", "8")
    assert rc == 0
    written = np.asarray(Image.open(tmp_path / "out" / "x.png"))
    np.testing.assert_array_equal(written, D.derain(img, model, tile=32, overlap=8))


def test_refuses_to_write_into_an_input_folder(tiny, tmp_path, capsys):
    _, path = tiny
    make_inputs(tmp_path)
    photos = tmp_path / "photos"
    before = {p.name: digest(p) for p in photos.iterdir()}
    for outdir in (photos, tmp_path / "photos" / ".." / "photos"):
        assert run_cli(photos / "a.png", "-o", outdir, "--checkpoint", path) == 2
        assert "refusing" in capsys.readouterr().err
    assert {p.name: digest(p) for p in photos.iterdir()} == before


def test_refuses_an_output_path_that_is_an_input(tiny, tmp_path, capsys):
    _, path = tiny
    make_inputs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(tmp_path / "photos" / "a.png", out / "a.png")  # out/a.png *is* the input
    before = digest(tmp_path / "photos" / "a.png")
    assert run_cli(tmp_path / "photos" / "a.png", "-o", out, "--checkpoint", path) == 2
    assert "is the input" in capsys.readouterr().err
    assert digest(tmp_path / "photos" / "a.png") == before


def test_failures_are_listed_and_the_exit_code_is_nonzero(tiny, tmp_path, capsys):
    _, path = tiny
    make_inputs(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    twin = tmp_path / "twin"
    twin.mkdir()
    Image.fromarray(scene(5, 5)).save(twin / "a.png")  # same name as photos/a.png
    rc = run_cli(tmp_path / "photos" / "a.png", tmp_path / "broken.png", twin / "a.png", tmp_path / "nope.png",
                 str(tmp_path / "*.jpx"), "-o", tmp_path / "out", "--checkpoint", path)
    captured = capsys.readouterr()
    assert rc == 1
    assert "derained 1 of 5" in captured.out
    err = captured.err
    assert "broken.png" in err and "twin/a.png" in err and "already the output of" in err
    assert "nope.png: no such file" in err and "*.jpx: no file matches" in err
    assert (tmp_path / "out" / "a.png").is_file() and not (tmp_path / "out" / "broken.png").exists()
    np.testing.assert_array_equal(  # the first a.png won, the twin did not overwrite it
        np.asarray(Image.open(tmp_path / "out" / "a.png")).shape, (21, 30, 3)
    )


def test_bad_tile_options(tiny, tmp_path, capsys):
    _, path = tiny
    Image.fromarray(scene(8, 8)).save(tmp_path / "a.png")
    base = [tmp_path / "a.png", "-o", tmp_path / "o", "--checkpoint", path]
    assert run_cli(*base, "--tile", "20", "--overlap", "18") == 2
    assert "--tile (20) must exceed --overlap (18)" in capsys.readouterr().err
    assert run_cli(*base, "--overlap", "-1") == 2


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["derain", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--checkpoint", "--tile", "--overlap", "--device", "--precision", "OUTDIR"):
        assert option in out


def test_python_dash_m_and_lazy_export(tiny, tmp_path):
    """A real process: the entry point, the progress bar, and ``import mosslib`` staying light."""
    _, path = tiny
    Image.fromarray(scene(10, 12)).save(tmp_path / "a.png")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mosslib", "derain", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
         "--checkpoint", str(path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "derained 1 of 1" in proc.stdout and "1/1" in proc.stderr  # tqdm's bar
    code = (
        "import sys, numpy as np, mosslib; assert 'torch' not in sys.modules; "
        f"out = mosslib.derain(np.zeros((5, 7, 3), np.uint8), {str(path)!r}); print(out.shape, out.dtype)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(5, 7, 3) uint8"
