"""The one image convention: uint8 (or 16-bit) pixels <-> the network's float range [-1, 1].

``x = u / 127.5 - 1`` for uint8 (``x = v / 32767.5 - 1`` for uint16), and back with clamping to
[-1, 1] and rounding to the nearest level (ties to even). Images are (H, W, 3) arrays; tensors
are float32 (3, H, W) or batches (B, 3, H, W). Every conversion in mosslib goes through here:
the trainer's validation, evaluation, the memory explorer, derain (in place, in numpy, for large
photos) and the samplers' batches.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["SCALES", "to_tensor", "to_batch", "batch_of", "to_uint8_image", "to_unit_", "from_unit_"]

SCALES = {np.dtype(np.uint8): (127.5, 255), np.dtype(np.uint16): (32767.5, 65535)}  # dtype -> (half range, top level)


def _check_rgb8(img, what: str = "image") -> np.ndarray:
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{what} must be a (H, W, 3) uint8 image, got {arr.dtype} {arr.shape}")
    return arr


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [-1, 1]."""
    arr = _check_rgb8(img, "to_tensor's image")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)


def to_batch(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (1, 3, H, W) in [-1, 1]."""
    return to_tensor(img).unsqueeze(0)


def batch_of(patches) -> torch.Tensor:
    """Same-size uint8 (H, W, 3) images -> float32 (B, 3, H, W) in [-1, 1]."""
    arr = np.ascontiguousarray(np.stack(patches).transpose(0, 3, 1, 2))
    return torch.from_numpy(arr).float().div_(127.5).sub_(1.0)


def to_uint8_image(t: torch.Tensor) -> np.ndarray:
    """float (3, H, W) or (1, 3, H, W) in [-1, 1] -> uint8 (H, W, 3) (clamped, rounded)."""
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"to_uint8_image takes one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"to_uint8_image takes (3, H, W) or (1, 3, H, W), got {tuple(t.shape)}")
    u = ((t.detach().float().cpu().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return u.permute(1, 2, 0).contiguous().numpy()


def to_unit_(x: np.ndarray, dtype) -> np.ndarray:
    """In place, for large photos: float32 pixel levels of ``dtype`` (uint8 or uint16) -> [-1, 1]."""
    scale, _ = SCALES[np.dtype(dtype)]
    x *= 1.0 / scale
    x -= 1.0
    return x


def from_unit_(x: np.ndarray, dtype) -> np.ndarray:
    """In place where it can: float32 in [-1, 1] -> pixel levels of ``dtype``, rounded and clipped."""
    scale, top = SCALES[np.dtype(dtype)]
    x += 1.0
    x *= scale
    np.rint(x, out=x)
    np.clip(x, 0, top, out=x)
    return x.astype(dtype)
