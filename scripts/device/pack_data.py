"""Pack the real training data small enough to travel to a borrowed GPU machine (bit-exact).

The device tool sends the working tree and at most 64 MiB; ``../shared/data`` does not travel.
Rain100L train (105 MB of PNG) is stored as its clean images in lossless WebP plus the rain
layer (rainy - clean, never negative in Rain100L) in lossless WebP: 45 MB; the 147 DDN-SIRR real
photos (12 MB of JPEG) are copied as they are. ``unpack_data.py`` re-makes the layout there.

    python scripts/device/pack_data.py [SRC=../shared/data] [DST=.gpu/pack]
"""
import glob
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

SRC = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
DST = sys.argv[2] if len(sys.argv) > 2 else ".gpu/pack"


def pack_pair(clean_path: str) -> str:
    name = os.path.basename(clean_path)
    rainy_path = clean_path.replace(f"{os.sep}norain{os.sep}", f"{os.sep}rain{os.sep}")
    clean = np.asarray(Image.open(clean_path).convert("RGB"))
    rainy = np.asarray(Image.open(rainy_path).convert("RGB"))
    layer = rainy.astype(np.int16) - clean.astype(np.int16)
    if layer.min() < 0:
        raise ValueError(f"{rainy_path}: darker than its clean image somewhere; this packing needs rainy >= clean")
    Image.fromarray(clean).save(f"{DST}/train/{name}.clean.webp", lossless=True, quality=100, method=2)
    Image.fromarray(layer.astype(np.uint8)).save(f"{DST}/train/{name}.res.webp", lossless=True, quality=100, method=2)
    return name


if __name__ == "__main__":
    os.makedirs(f"{DST}/train", exist_ok=True)
    os.makedirs(f"{DST}/real_input", exist_ok=True)
    cleans = sorted(glob.glob(f"{SRC}/Rain100L/train/norain/*.png"))
    if not cleans:
        sys.exit(f"{SRC}/Rain100L/train/norain: no PNG files")
    with ProcessPoolExecutor() as ex:
        n = len(list(ex.map(pack_pair, cleans)))
    for f in glob.glob(f"{SRC}/DDN-SIRR/real_input/*"):
        shutil.copy(f, f"{DST}/real_input/")
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(DST) for f in fs)
    print(f"packed {n} pairs and {len(os.listdir(f'{DST}/real_input'))} real photos: {size / 2**20:.1f} MiB in {DST}")
