"""Re-make Rain100L/train/{rain,norain} and DDN-SIRR/real_input under ROOT from a pack written by
``pack_data.py`` (bit-exact pixels).   python scripts/device/unpack_data.py ROOT [PACK=.gpu/pack]"""
import glob
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

ROOT = sys.argv[1]
PACK = sys.argv[2] if len(sys.argv) > 2 else ".gpu/pack"


def unpack_pair(clean_webp: str) -> str:
    name = os.path.basename(clean_webp)[: -len(".clean.webp")]
    clean = np.asarray(Image.open(clean_webp).convert("RGB"))
    layer = np.asarray(Image.open(clean_webp.replace(".clean.webp", ".res.webp")).convert("RGB"))
    rainy = (clean.astype(np.int16) + layer).astype(np.uint8)
    Image.fromarray(clean).save(f"{ROOT}/Rain100L/train/norain/{name}", compress_level=1)
    Image.fromarray(rainy).save(f"{ROOT}/Rain100L/train/rain/{name}", compress_level=1)
    return name


if __name__ == "__main__":
    for d in ("Rain100L/train/norain", "Rain100L/train/rain", "DDN-SIRR"):
        os.makedirs(f"{ROOT}/{d}", exist_ok=True)
    with ProcessPoolExecutor() as ex:
        n = len(list(ex.map(unpack_pair, sorted(glob.glob(f"{PACK}/train/*.clean.webp")))))
    shutil.copytree(f"{PACK}/real_input", f"{ROOT}/DDN-SIRR/real_input", dirs_exist_ok=True)
    print(f"unpacked {n} pairs and {len(os.listdir(f'{ROOT}/DDN-SIRR/real_input'))} real photos into {ROOT}")
