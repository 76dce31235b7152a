"""PSNR and SSIM with a written convention (as BasicSR does).

Inputs: uint8 arrays (H, W, 3), or float arrays/tensors with values in [0, 1] (H, W, 3) or
(3, H, W), which are clamped to [0, 1], multiplied by 255 and **rounded** to uint8 first (the
paper's release truncates instead, a defect: see docs/release.md). Both images must have the same
shape.

Conventions:

``"rgb"`` (the paper's, section 4.1): scikit-image on the RGB uint8 images,
  ``peak_signal_noise_ratio(data_range=255)`` and
  ``structural_similarity(channel_axis=-1, data_range=255)`` with its default 7x7 uniform
  window.
``"y"`` (the common MATLAB-style one of most deraining papers): the Y channel of
  ``skimage.color.rgb2ycbcr`` (ITU-R BT.601, range [16, 235]) as float64, PSNR with
  ``data_range=255``, SSIM with ``gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255``.

Identical images give PSNR ``inf`` and SSIM 1.
"""
from __future__ import annotations

import math

import numpy as np
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

__all__ = ["CONVENTIONS", "to_uint8", "psnr", "ssim", "describe"]

CONVENTIONS = {
    "rgb": "RGB uint8 (clamp, x255, round), scikit-image PSNR (data_range 255) and SSIM "
    "(channel_axis=-1, 7x7 uniform window) - the paper's convention",
    "y": "Y of BT.601 YCbCr (skimage rgb2ycbcr) from RGB uint8, PSNR (data_range 255), SSIM "
    "(gaussian_weights, sigma 1.5, population covariance) - the MATLAB-style convention",
}


def describe(convention: str) -> str:
    """One line that says how a number was computed, for tables and JSON."""
    _check_convention(convention)
    return CONVENTIONS[convention]


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown metric convention {convention!r}; use one of {sorted(CONVENTIONS)}")


def to_uint8(image) -> np.ndarray:
    """uint8 (H, W, 3) from uint8 or float in [0, 1] (HWC or CHW, numpy or torch)."""
    if hasattr(image, "detach"):  # torch tensor
        image = image.detach().cpu().float().numpy()
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"metrics take uint8 or float images in [0, 1], got dtype {arr.dtype}")
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_uint8(pred), to_uint8(target)
    if a.shape != b.shape:
        raise ValueError(f"prediction and target shapes differ: {a.shape} vs {b.shape}")
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"metrics take (H, W, 3) RGB images, got shape {a.shape}")
    return a, b


def _y(image: np.ndarray) -> np.ndarray:
    return rgb2ycbcr(image)[..., 0]


def psnr(pred, target, convention: str = "rgb") -> float:
    """Peak signal-to-noise ratio in dB under ``convention`` (inf for identical images)."""
    _check_convention(convention)
    a, b = _pair(pred, target)
    if np.array_equal(a, b):
        return math.inf
    if convention == "y":
        return float(peak_signal_noise_ratio(_y(b), _y(a), data_range=255))
    return float(peak_signal_noise_ratio(b, a, data_range=255))


def ssim(pred, target, convention: str = "rgb") -> float:
    """Structural similarity under ``convention`` (1.0 for identical images)."""
    _check_convention(convention)
    a, b = _pair(pred, target)
    if min(a.shape[:2]) < 7:
        raise ValueError(f"SSIM needs images of at least 7x7 pixels, got {a.shape[:2]}")
    if convention == "y":
        return float(
            structural_similarity(
                _y(b), _y(a), data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
            )
        )
    return float(structural_similarity(b, a, data_range=255, channel_axis=-1))
