"""The embedded default data set: DDN-SIRR-shaped, built offline from scikit-image's photographs.

Photo split (no photograph is in both):
  training photos (labeled pairs and the unlabeled set): ``astronaut``, ``coffee``, ``rocket``;
  test photos (test set only): ``chelsea``, both views of ``stereo_motorcycle``.
The other scikit-image colour images are not natural photographs (a star field, microscopy,
retina) or need a download, so they are not used.

Layout of the root returned by :func:`ensure` (read by the same loaders as the real data):
  ``synthetic/train/{rain,norain}/NAME.png``  labeled pairs, "synthetic" rain (folder-pairs, split train)
  ``sirr_like/input_val/inputN.png`` + ``label_val/norainN.png``  test pairs with ground truth:
      N = 1..10 dense (heavy real-like rain), 11..20 sparse (light real-like rain) (ddn-sirr layout)
  ``sirr_like/real_input/N.png``  unlabeled real-like rainy crops of the training photos (D_U)
  ``README.txt``, ``BUILD.json`` (what was built, from what, with which seeds)

Everything is a deterministic function of :data:`VERSION` and the size spec (seeded numpy),
rebuilt only when missing; the build goes to a temporary folder renamed into place at the end.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .rain import get_style, render_rain

__all__ = ["VERSION", "TRAIN_PHOTOS", "TEST_PHOTOS", "SIZES", "Spec", "ensure", "default_cache_dir", "photos",
           "DENSE", "SPARSE"]

VERSION = "embedded-v1"
TRAIN_PHOTOS = ("astronaut", "coffee", "rocket")
TEST_PHOTOS = ("chelsea", "motorcycle_left", "motorcycle_right")

# test rain: heavy and light variants of the "real-like" style
# (input PSNR about 17 dB dense, 24 dB sparse, near DDN-SIRR's 17.8 / 23.9)
DENSE = get_style("real-like", layers=(2, 3), density=(0.002, 0.0035), intensity=(0.3, 0.5), haze=(0.1, 0.2))
SPARSE = get_style("real-like", layers=(1, 2), density=(0.0012, 0.0025), intensity=(0.25, 0.5), haze=(0.0, 0.06))


@dataclass(frozen=True)
class Spec:
    """How much to build: counts and crop sizes (pixels, inclusive ranges)."""

    train_crops: int = 18  # crops of the training photos (photo = index mod 3)
    renders_per_crop: int = 3  # "synthetic" rain renderings per crop
    train_side: tuple[int, int] = (144, 192)
    test_per_group: int = 10  # dense and sparse pairs each
    test_height: tuple[int, int] = (128, 160)
    test_width: tuple[int, int] = (160, 192)
    unlabeled: int = 30
    unlabeled_side: tuple[int, int] = (144, 192)
    seed: int = 2021


SIZES = {
    "default": Spec(),
    "tiny": Spec(train_crops=4, renders_per_crop=2, train_side=(48, 48), test_per_group=4, test_height=(48, 48),
                 test_width=(48, 48), unlabeled=4, unlabeled_side=(48, 48)),
}


def photos(names) -> dict[str, np.ndarray]:
    """The named scikit-image photographs as uint8 (H, W, 3)."""
    from skimage import data  # lazy: scikit-image's sample photographs load only when the embedded set is built

    out = {}
    for name in names:
        if name.startswith("motorcycle_"):
            left, right, _ = data.stereo_motorcycle()
            out[name] = left if name.endswith("left") else right
        else:
            out[name] = getattr(data, name)()
    return {k: np.ascontiguousarray(v[..., :3]).astype(np.uint8) for k, v in out.items()}


def _crop(photo: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A random (h, w) crop of the photo shrunk by a random factor in [0.4, 1] (never below the crop)."""
    ph, pw = photo.shape[:2]
    lo = max(h / ph, w / pw)
    scale = float(rng.uniform(max(0.4, lo), 1.0)) if lo < 1.0 else lo
    size = (max(w, int(round(pw * scale))), max(h, int(round(ph * scale))))
    img = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS)) if size != (pw, ph) else photo
    top = int(rng.integers(0, img.shape[0] - h + 1))
    left = int(rng.integers(0, img.shape[1] - w + 1))
    out = img[top : top + h, left : left + w]
    return np.ascontiguousarray(out[:, ::-1] if rng.random() < 0.5 else out)


def _save(path: Path, img: np.ndarray) -> None:
    """PNG with fast compression (the whole tree is renamed into place at the end)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, compress_level=1)


def _side(rng: np.random.Generator, r: tuple[int, int]) -> int:
    return int(rng.integers(r[0], r[1] + 1))


def build(root: Path, spec: Spec) -> dict:
    """Write the data set under ``root`` (which must not exist yet); returns the manifest."""
    root.mkdir(parents=True)
    train_imgs = photos(TRAIN_PHOTOS)
    test_imgs = photos(TEST_PHOTOS)
    rng = np.random.default_rng([spec.seed, 1])
    rain_seed = spec.seed * 100_000
    # labeled synthetic pairs
    n_pairs = 0
    for k in range(spec.train_crops):
        name = TRAIN_PHOTOS[k % len(TRAIN_PHOTOS)]
        clean = _crop(train_imgs[name], _side(rng, spec.train_side), _side(rng, spec.train_side), rng)
        for j in range(spec.renders_per_crop):
            rainy, _, _ = render_rain(clean, "synthetic", seed=rain_seed + 1000 * k + j)
            stem = f"{name}-{k + 1:02d}-{j + 1}"
            _save(root / "synthetic" / "train" / "rain" / f"{stem}.png", rainy)
            _save(root / "synthetic" / "train" / "norain" / f"{stem}.png", clean)
            n_pairs += 1
    # test set from the test photos: N = 1..n dense, 11..10+n sparse
    rng = np.random.default_rng([spec.seed, 2])
    numbers = []
    for group, style, base in (("dense", DENSE, 1), ("sparse", SPARSE, 11)):
        for i in range(spec.test_per_group):
            n = base + i
            name = TEST_PHOTOS[(n - 1) % len(TEST_PHOTOS)]
            clean = _crop(test_imgs[name], _side(rng, spec.test_height), _side(rng, spec.test_width), rng)
            rainy, _, _ = render_rain(clean, style, seed=rain_seed + 50_000 + n)
            _save(root / "sirr_like" / "input_val" / f"input{n}.png", rainy)
            _save(root / "sirr_like" / "label_val" / f"norain{n}.png", clean)
            numbers.append(n)
    # unlabeled real-like crops of the training photos (other crops than the labeled ones)
    rng = np.random.default_rng([spec.seed, 3])
    for i in range(spec.unlabeled):
        name = TRAIN_PHOTOS[i % len(TRAIN_PHOTOS)]
        clean = _crop(train_imgs[name], _side(rng, spec.unlabeled_side), _side(rng, spec.unlabeled_side), rng)
        style = (DENSE, SPARSE, "real-like")[i % 3]
        rainy, _, _ = render_rain(clean, style, seed=rain_seed + 80_000 + i)
        _save(root / "sirr_like" / "real_input" / f"{i + 1}.png", rainy)
    manifest = {
        "version": VERSION,
        "spec": asdict(spec),
        "train_photos": list(TRAIN_PHOTOS),
        "test_photos": list(TEST_PHOTOS),
        "counts": {"train_pairs": n_pairs, "test_dense": spec.test_per_group, "test_sparse": spec.test_per_group,
                   "unlabeled": spec.unlabeled},
        "styles": {"train": "synthetic", "dense": asdict(DENSE), "sparse": asdict(SPARSE),
                   "unlabeled": "alternately dense, sparse, real-like"},
    }
    (root / "README.txt").write_text(_readme(manifest))
    (root / "BUILD.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _readme(m: dict) -> str:
    c = m["counts"]
    return f"""mosslib embedded data set ({m['version']}): built offline by mosslib.data.embedded, no download.

Made from the photographs shipped with scikit-image, with procedural rain (mosslib.data.rain):
  training photos {', '.join(m['train_photos'])}; test photos {', '.join(m['test_photos'])} (never used for training).

synthetic/train/{{rain,norain}}/NAME.png  {c['train_pairs']} labeled pairs: crops of the training photos, "synthetic"
    style rain (thin straight uniform streaks, DDN-like), several renderings per crop.
sirr_like/input_val/inputN.png + label_val/norainN.png  test pairs: N = 1..{c['test_dense']} dense (heavy real-like
    rain), 11..{10 + c['test_sparse']} sparse (light real-like rain); crops of the test photos.
sirr_like/real_input/N.png  {c['unlabeled']} unlabeled rainy images: other crops of the training photos with
    "real-like" rain (mixed angles and widths, blur, haze) - the unlabeled set D_U.

Deterministic (seed {m['spec']['seed']}); BUILD.json records the exact settings. Delete this folder to rebuild.
"""


def default_cache_dir() -> Path:
    """``$MOSSLIB_CACHE`` if set, else ``~/.cache/mosslib``."""
    env = os.environ.get("MOSSLIB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mosslib"


def _valid(root: Path, spec: Spec) -> bool:
    try:
        m = json.loads((root / "BUILD.json").read_text())
    except (OSError, ValueError):
        return False
    return m.get("version") == VERSION and m.get("spec") == json.loads(json.dumps(asdict(spec)))


def _remove_abandoned(base: Path, name: str) -> None:
    """Delete temporary build folders left by killed builds (their process no longer exists)."""
    for leftover in base.glob(f".{name}.tmp-*"):
        try:
            pid = int(leftover.name.split("-")[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(leftover, ignore_errors=True)
        except (ValueError, IndexError, PermissionError, OSError):
            continue


def ensure(cache_dir: str | Path | None = None, size: str = "default") -> Path:
    """The root of the embedded data set, built on first use (well under a minute).

    ``cache_dir`` (default :func:`default_cache_dir`) holds ``embedded-v1/`` (or
    ``embedded-v1-tiny/`` for ``size="tiny"``, a small version for smoke tests).
    """
    if size not in SIZES:
        raise ValueError(f"unknown embedded data set size {size!r}; use one of {sorted(SIZES)}")
    spec = SIZES[size]
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    root = base / (VERSION if size == "default" else f"{VERSION}-{size}")
    if _valid(root, spec):
        return root
    base.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(base, root.name)
    tmp = base / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        build(tmp, spec)
        try:
            os.rename(tmp, root)
        except OSError:
            if _valid(root, spec):  # another process finished first
                shutil.rmtree(tmp, ignore_errors=True)
                return root
            stale = base / f".{root.name}.stale-{uuid.uuid4().hex[:8]}"
            os.rename(root, stale)  # an old or broken tree: replace it
            os.rename(tmp, root)
            shutil.rmtree(stale, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root
