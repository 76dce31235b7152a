"""The one image convention (mosslib.data.images): uint8/uint16 <-> [-1, 1], both ways, exact."""
import numpy as np
import pytest
import torch

from mosslib.data import images


def test_uint8_round_trip_and_values():
    img = np.arange(256, dtype=np.uint8).repeat(3).reshape(16, 16, 3)
    t = images.to_tensor(img)
    assert t.shape == (3, 16, 16) and t.dtype == torch.float32
    assert float(t.min()) == -1.0 and float(t.max()) == 1.0
    assert float(t[0, 0, 1]) == pytest.approx(1 / 127.5 - 1)  # x = u / 127.5 - 1
    assert np.array_equal(images.to_uint8_image(t), img)
    assert np.array_equal(images.to_uint8_image(images.to_batch(img)), img)
    assert images.batch_of([img, img]).shape == (2, 3, 16, 16)
    assert torch.equal(images.batch_of([img])[0], t)
    assert images.to_uint8_image(torch.full((3, 1, 1), 0.0))[0, 0, 0] == 128  # 127.5: ties to even
    with pytest.raises(ValueError, match="uint8"):
        images.to_tensor(img.astype(np.float32))
    with pytest.raises(ValueError, match="one image"):
        images.to_uint8_image(torch.zeros(2, 3, 4, 4))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_in_place_numpy_path_agrees_with_the_tensor_path(dtype):
    top = np.iinfo(dtype).max
    img = np.random.default_rng(0).integers(0, top + 1, (9, 7, 3)).astype(dtype)
    x = images.to_unit_(img.astype(np.float32), dtype)
    assert x.min() >= -1.0 and x.max() <= 1.0
    if dtype == np.uint8:
        assert np.allclose(x, images.to_tensor(img).permute(1, 2, 0).numpy(), atol=1e-6)
    back = images.from_unit_(x.copy(), dtype)
    assert back.dtype == dtype and np.array_equal(back, img)
    assert images.from_unit_(np.full((1, 1, 3), 3.0, np.float32), dtype).max() == top  # clipped


def test_no_other_module_converts_pixels_itself():
    """One convention, one module: the half-range constants appear nowhere else in the package."""
    from pathlib import Path

    pkg = Path(images.__file__).resolve().parents[1]
    elsewhere = [str(p.relative_to(pkg)) for p in pkg.rglob("*.py")
                 if p.name != "images.py" and ("127.5" in p.read_text() or "32767.5" in p.read_text())]
    assert elsewhere == []
