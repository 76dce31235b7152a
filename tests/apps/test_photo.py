"""Format-preserving photo I/O: modes, bit depths, EXIF orientation and metadata survive."""
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps, JpegImagePlugin

from mosslib.data.imageio import ImageError
from mosslib.apps.photo import Photo, from_array, from_pil, orient, read_photo, to_array, to_pil, write_photo

RNG = np.random.default_rng(0)
EXIF_ORIENTATION, EXIF_MAKE = 0x0112, 0x010F


def noise(h, w, c=3, dtype=np.uint8, seed=0):
    top = 256 if dtype == np.uint8 else 65536
    return np.random.default_rng(seed).integers(0, top, (h, w, c), dtype=dtype)


def pil_reference(path):
    """What the photo's pixels should be, by Pillow's own conversions (8-bit files)."""
    ref = Image.open(path)
    ref.load()
    if ref.mode == "P":
        ref = ref.convert("RGBA" if "transparency" in ref.info else "RGB")
    elif ref.mode == "1":
        ref = ref.convert("L")
    arr = np.asarray(ref)
    return arr[..., None] if arr.ndim == 2 else arr


# -- orientation ------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_matches_pillow_exif_transpose(orientation, tmp_path):
    img = Image.fromarray(noise(5, 8))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    img.save(tmp_path / "o.png", exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    np.testing.assert_array_equal(orient(noise(5, 8), orientation), expected)
    np.testing.assert_array_equal(read_photo(tmp_path / "o.png").rgb, expected)


def test_exif_orientation_applied_and_tag_dropped_other_tags_kept(tmp_path):
    yy, xx = np.mgrid[0:40, 0:64]
    pixels = np.stack([xx * 4, yy * 6, (xx + yy) * 2], axis=2).astype(np.uint8)  # smooth, asymmetric
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored sideways: display rotated 90 degrees clockwise
    exif[EXIF_MAKE] = "mosslib-test-camera"
    Image.fromarray(pixels).save(tmp_path / "in.jpg", exif=exif.tobytes(), quality=100)
    photo = read_photo(tmp_path / "in.jpg")
    assert photo.rgb.shape == (64, 40, 3)  # upright: portrait
    write_photo(tmp_path / "out.jpg", photo)
    out = Image.open(tmp_path / "out.jpg")
    assert out.size == (40, 64)
    assert out.getexif().get(EXIF_ORIENTATION) in (None, 1)
    assert out.getexif().get(EXIF_MAKE) == "mosslib-test-camera"
    upright = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "in.jpg"))).astype(int)
    assert np.abs(np.asarray(out).astype(int) - upright).mean() < 2  # same picture, same way up
    assert np.abs(np.asarray(out).astype(int) - upright[::-1, ::-1]).mean() > 20  # a wrong way is far


def test_broken_exif_does_not_lose_the_pixels(tmp_path):
    Image.fromarray(noise(6, 9)).save(tmp_path / "b.jpg", exif=b"Exif\x00\x00garbage-not-tiff", quality=95)
    assert read_photo(tmp_path / "b.jpg").rgb.shape == (6, 9, 3)


# -- 16 bits ----------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_round_trip_is_exact(channels, tmp_path):
    arr = noise(13, 17, channels, np.uint16, seed=channels)
    write_photo(tmp_path / "a.png", from_array(arr), format="PNG")
    photo = read_photo(tmp_path / "a.png")
    assert photo.bits == 16 and photo.gray == (channels <= 2) and (photo.alpha is not None) == (channels in (2, 4))
    np.testing.assert_array_equal(to_array(photo), arr)
    write_photo(tmp_path / "b.png", photo)  # and again: still 16 bits, same values
    np.testing.assert_array_equal(to_array(read_photo(tmp_path / "b.png")), arr)


def test_16bit_png_from_pillow_and_our_png_readable_by_pillow(tmp_path):
    gray = noise(9, 11, 1, np.uint16)[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")  # Pillow writes I;16 PNGs itself
    np.testing.assert_array_equal(read_photo(tmp_path / "g.png").rgb[..., 0], gray)
    rgb = noise(9, 11, 3, np.uint16)
    write_photo(tmp_path / "c.png", from_array(rgb), format="PNG")
    seen = Image.open(tmp_path / "c.png")
    assert seen.mode == "RGB"  # Pillow keeps the high bytes of 16-bit colour
    np.testing.assert_array_equal(np.asarray(seen), (rgb >> 8).astype(np.uint8))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16bit_tiff_round_trip_is_exact(channels, tmp_path):
    arr = noise(7, 10, channels, np.uint16, seed=10 + channels)
    write_photo(tmp_path / "a.tif", from_array(arr), format="TIFF")
    photo = read_photo(tmp_path / "a.tif")
    assert photo.bits == 16 and photo.format == "TIFF"
    np.testing.assert_array_equal(to_array(photo), arr)


# -- modes and formats ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mode, fmt, out_mode",
    [
        ("L", "PNG", "L"),
        ("LA", "PNG", "LA"),
        ("RGBA", "PNG", "RGBA"),
        ("P", "PNG", "RGB"),
        ("1", "PNG", "L"),
        ("L", "JPEG", "L"),
        ("CMYK", "JPEG", "RGB"),
        ("RGB", "BMP", "RGB"),
        ("P", "BMP", "RGB"),
        ("RGBA", "TIFF", "RGBA"),
        ("L", "TIFF", "L"),
    ],
)
def test_modes_come_back_as_documented(mode, fmt, out_mode, tmp_path):
    src = tmp_path / f"in.{fmt.lower()}"
    Image.fromarray(noise(9, 14)).convert(mode).save(src, format=fmt)
    photo = read_photo(src)
    assert photo.rgb.shape == (9, 14, 3) and photo.rgb.dtype == np.uint8
    write_photo(tmp_path / src.name.replace("in", "out"), photo)
    out = Image.open(tmp_path / src.name.replace("in", "out"))
    assert (out.format, out.mode, out.size) == (fmt, out_mode, (14, 9))


def test_palette_with_transparency_becomes_rgba(tmp_path):
    img = Image.fromarray(noise(8, 8)).convert("P")
    clear = img.getpixel((0, 0))  # this palette entry becomes fully transparent
    img.save(tmp_path / "p.png", transparency=clear)
    photo = read_photo(tmp_path / "p.png")
    assert photo.alpha is not None and photo.alpha[0, 0] == 0 and (photo.alpha == 255).any()
    np.testing.assert_array_equal(to_array(photo), pil_reference(tmp_path / "p.png"))


def test_jpeg_written_at_quality_95_with_source_subsampling(tmp_path):
    Image.fromarray(noise(32, 32)).save(tmp_path / "a.jpg", quality=80, subsampling="4:2:2")
    write_photo(tmp_path / "b.jpg", read_photo(tmp_path / "a.jpg"))
    reference = io.BytesIO()
    Image.fromarray(noise(32, 32)).save(reference, format="JPEG", quality=95, subsampling="4:2:2")
    out, ref = Image.open(tmp_path / "b.jpg"), Image.open(reference)
    assert out.quantization == ref.quantization  # quality 95's tables
    assert JpegImagePlugin.get_sampling(out) == JpegImagePlugin.get_sampling(Image.open(tmp_path / "a.jpg")) == 1


def test_webp_lossless_stays_lossless(tmp_path):
    pixels = noise(12, 20)
    Image.fromarray(pixels).save(tmp_path / "a.webp", lossless=True)
    write_photo(tmp_path / "b.webp", read_photo(tmp_path / "a.webp"))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.webp").convert("RGB")), pixels)


def test_icc_profile_and_dpi_are_carried(tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for fmt in ("PNG", "JPEG"):
        src = tmp_path / f"a.{fmt.lower()}"
        Image.fromarray(noise(6, 6)).save(src, format=fmt, icc_profile=icc, dpi=(300, 300))
        write_photo(tmp_path / f"b.{fmt.lower()}", read_photo(src))
        out = Image.open(tmp_path / f"b.{fmt.lower()}")
        assert out.info.get("icc_profile") == icc
        assert tuple(round(d) for d in out.info["dpi"]) == (300, 300)
    arr16 = from_array(noise(4, 5, 3, np.uint16))
    exif = Image.Exif()
    exif[EXIF_MAKE] = "mosslib-test-camera"
    arr16.info.update(icc_profile=icc, dpi=(300, 300), exif=exif.tobytes())
    write_photo(tmp_path / "c.png", arr16, format="PNG")
    out = Image.open(tmp_path / "c.png")
    assert out.info.get("icc_profile") == icc and tuple(round(d) for d in out.info["dpi"]) == (300, 300)
    assert out.getexif().get(EXIF_MAKE) == "mosslib-test-camera"


def test_phone_mpo_jpeg_gives_its_main_picture_as_jpeg(tmp_path):
    main_picture, preview = Image.fromarray(noise(10, 12)), Image.fromarray(noise(5, 6, seed=1))
    main_picture.save(tmp_path / "phone.jpg", format="MPO", save_all=True, append_images=[preview])
    photo = read_photo(tmp_path / "phone.jpg")
    assert photo.format == "MPO" and photo.rgb.shape == (10, 12, 3)
    write_photo(tmp_path / "out.jpg", photo)
    assert Image.open(tmp_path / "out.jpg").format == "JPEG"


def test_unsupported_formats_and_frames_name_the_file(tmp_path):
    Image.fromarray(noise(5, 5)).save(tmp_path / "a.gif")
    with pytest.raises(ImageError, match=r"a\.gif.*unsupported format GIF"):
        read_photo(tmp_path / "a.gif")
    frames = [Image.fromarray(noise(5, 5, seed=s)) for s in range(3)]
    frames[0].save(tmp_path / "multi.tif", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match=r"multi\.tif.*3 frames"):
        read_photo(tmp_path / "multi.tif")


# -- arrays and Pillow images -----------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 7), (6, 7, 1), (6, 7, 2), (6, 7, 3), (6, 7, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_array_round_trip(shape, dtype):
    top = 256 if dtype == np.uint8 else 65536
    arr = RNG.integers(0, top, shape, dtype=dtype)
    if len(shape) == 3 and shape[2] == 3:
        arr[..., 1] = arr[..., 2] = arr[..., 0]  # a gray picture in RGB stays RGB
    photo = from_array(arr)
    assert photo.rgb.shape == (6, 7, 3) and photo.rgb.dtype == dtype
    back = to_array(photo)
    np.testing.assert_array_equal(back.reshape(arr.shape), arr)


def test_gray_is_written_back_as_luma():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    photo = Photo(rgb=rgb, gray=True)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    assert np.abs(to_array(photo)[..., 0].astype(int) - expected).max() <= 1


def test_bad_arrays_are_refused():
    with pytest.raises(ValueError, match="uint8 or uint16"):
        from_array(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        from_array(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        from_array(np.zeros((0, 4, 3), np.uint8))


def test_pil_round_trip_modes():
    for mode in ("L", "LA", "RGB", "RGBA"):
        img = Image.fromarray(noise(4, 6)).convert(mode)
        back = to_pil(from_pil(img))
        assert back.mode == mode
        np.testing.assert_array_equal(np.asarray(back), np.asarray(img))
    gray16 = Image.fromarray(noise(4, 6, 1, np.uint16)[..., 0])
    assert to_pil(from_pil(gray16)).mode == "I;16"
    with pytest.raises(ValueError, match="16-bit colour"):
        to_pil(from_array(noise(4, 6, 3, np.uint16)))


# -- property-based decoding ------------------------------------------------------------------
FORMAT_MODES = {
    "PNG": ["L", "LA", "RGB", "RGBA", "P", "1"],
    "BMP": ["L", "RGB", "P", "1"],
    "TIFF": ["L", "LA", "RGB", "RGBA", "P"],
}


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(sorted(FORMAT_MODES)),
    st.integers(0, 5),
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(0, 2**16),
)
def test_decoding_matches_pillow_and_round_trips(fmt, mode_index, h, w, seed):
    import tempfile
    from pathlib import Path

    mode = FORMAT_MODES[fmt][mode_index % len(FORMAT_MODES[fmt])]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / f"a.{fmt.lower()}", Path(tmp) / f"b.{fmt.lower()}"
        Image.fromarray(noise(h, w, seed=seed)).convert(mode).save(src, format=fmt)
        photo = read_photo(src)
        assert photo.rgb.shape == (h, w, 3) and photo.format == fmt
        np.testing.assert_array_equal(to_array(photo), pil_reference(src))
        write_photo(dst, photo)
        np.testing.assert_array_equal(to_array(read_photo(dst)), to_array(photo))
        assert Image.open(dst).format == fmt
