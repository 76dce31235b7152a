import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mosslib.measure.metrics import psnr, ssim, to_uint8


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    return a, b


def test_rgb_convention_is_scikit_image_on_rgb(pair):
    a, b = pair
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255))
    assert ssim(a, b) == pytest.approx(structural_similarity(b, a, data_range=255, channel_axis=-1))


def test_y_convention_matches_matlab_style(pair):
    a, b = pair
    ya, yb = rgb2ycbcr(a)[..., 0], rgb2ycbcr(b)[..., 0]
    assert psnr(a, b, "y") == pytest.approx(peak_signal_noise_ratio(yb, ya, data_range=255))
    ref = structural_similarity(yb, ya, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ssim(a, b, "y") == pytest.approx(ref)
    assert psnr(a, b, "y") != pytest.approx(psnr(a, b, "rgb"))


def test_identical_images():
    a = np.full((16, 16, 3), 7, np.uint8)
    assert psnr(a, a) == math.inf and ssim(a, a) == 1.0
    assert psnr(a, a, "y") == math.inf and ssim(a, a, "y") == pytest.approx(1.0)


def test_float_inputs_are_clamped_and_rounded_not_truncated():
    f = np.full((8, 8, 3), 0.5 / 255 * 3, np.float32)  # 1.5 -> rounds to 2, truncation would give 1
    assert to_uint8(f)[0, 0, 0] == 2
    assert to_uint8(np.full((2, 2, 3), 1.7))[0, 0, 0] == 255
    t = torch.zeros(3, 8, 8)  # CHW tensor
    assert to_uint8(t).shape == (8, 8, 3)


def test_float_and_uint8_agree(pair):
    a, b = pair
    assert psnr(a / 255.0, b / 255.0) == pytest.approx(psnr(a, b))


def test_mismatched_shapes_and_bad_convention():
    a = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(ValueError, match="convention"):
        psnr(a, a, "lab")
