"""load_image against imageio's own read; the grey, RGB, RGBA, palette and 16-bit rules."""
import numpy as np
import pytest

import sigconv.io as sio
from sigconv.errors import ArgumentError

iio = pytest.importorskip("imageio.v3")


@pytest.mark.parametrize("name,channels", [("chelsea.png", 3), ("astronaut.png", 3),
                                           ("coffee.png", 3), ("camera.png", 1)])
def test_shared_images_equal_imageio(shared_data, name, channels):
    path = shared_data / "images" / name
    signal = sio.load(path)
    raw = iio.imread(path)
    assert signal.kind == "image" and signal.axes == ("channel", "height", "width")
    assert signal.shape == (channels,) + raw.shape[:2] and signal.dtype == np.float32
    expected = (raw if raw.ndim == 3 else raw[..., None]).transpose(2, 0, 1) / np.float32(255)
    np.testing.assert_array_equal(signal.data, expected.astype(np.float32))
    assert signal.meta["source_dtype"] == "uint8"


def test_rgba_palette_and_16_bit(tmp_path, rng):
    from PIL import Image

    rgba = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    iio.imwrite(tmp_path / "rgba.png", rgba)
    s = sio.load(tmp_path / "rgba.png")
    assert s.channel_names == ("R", "G", "B", "A")
    np.testing.assert_array_equal(s.data, rgba.transpose(2, 0, 1) / np.float32(255))
    np.testing.assert_array_equal(sio.load_image(tmp_path / "rgba.png", mode="RGB").data, s.data[:3])

    palette = Image.fromarray(rgba[..., :3]).convert("P", palette=Image.ADAPTIVE, colors=16)
    palette.save(tmp_path / "palette.png")
    expected = np.asarray(palette.convert("RGB"))
    p = sio.load(tmp_path / "palette.png")
    assert p.shape == (3, 20, 30)
    np.testing.assert_array_equal(p.data, expected.transpose(2, 0, 1) / np.float32(255))

    deep = rng.integers(0, 65536, (10, 12), dtype=np.uint16)
    iio.imwrite(tmp_path / "deep.png", deep)
    d = sio.load(tmp_path / "deep.png")
    np.testing.assert_allclose(d.data[0], deep / 65535.0, rtol=1e-6)
    assert d.data.max() <= 1.0


def test_modes(shared_data):
    rgb = sio.load_image(shared_data / "images" / "chelsea.png")
    grey = sio.load_image(shared_data / "images" / "chelsea.png", mode="L")
    np.testing.assert_allclose(grey.data[0], np.tensordot([0.299, 0.587, 0.114], rgb.data, 1),
                               atol=1e-6)
    camera = sio.load_image(shared_data / "images" / "camera.png", mode="RGB")
    assert camera.shape[0] == 3 and np.array_equal(camera.data[0], camera.data[2])
    with pytest.raises(ArgumentError, match="mode must be one of 'L', 'RGB', 'RGBA'"):
        sio.load_image(shared_data / "images" / "camera.png", mode="CMYK")


def test_jpeg(tmp_path, shared_data):
    path = tmp_path / "chelsea.jpg"
    iio.imwrite(path, iio.imread(shared_data / "images" / "chelsea.png"), quality=90)
    np.testing.assert_array_equal(sio.load(path).data,
                                  iio.imread(path).transpose(2, 0, 1) / np.float32(255))
