"""Data sources named on the command line: digits, .npz files and image folders."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.data import sources
from keras_squeeze.data.inputs import InputSpec
from keras_squeeze.errors import DataError
from tests.data.image_folders import digits_folder, write_png


def spec(*shape):
    return [InputSpec("image", tuple(shape), "float32")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = digits_folder(tmp_path_factory.mktemp("images"), classes=(0, 1, 2), per_class=20)
    # Keras' conventions: images at any depth below a class folder, extensions in any case.
    (root / "digit_2" / "deeper").mkdir()
    (root / "digit_2" / "019.png").rename(root / "digit_2" / "deeper" / "019.PNG")
    (root / "digit_0" / "notes.txt").write_text("not an image")
    return root


def test_scan_counts_classes_in_sorted_order(folder):
    scan = sources.scan_image_folder(folder)
    assert scan.class_names == ("digit_0", "digit_1", "digit_2")
    assert scan.counts == (20, 20, 20) and scan.total == 60


@pytest.mark.parametrize(
    "layout, message",
    [
        ({}, r"has no class sub-folders.*Received: '.*' with no sub-folders"),
        ({"a/readme.txt": None, "b/x.csv": None}, r"holds no images.*\['a', 'b'\] and no images"),
        (
            {"cats/1.png": 1, "cats/2.png": 1, "dogs/": None},
            r"images of one class only.*\['cats'\]",
        ),
        ({"a/1.png": 1, "a/2.png": 1, "b/3.png": 1, "b/4.png": 1}, r"too few images.*at least 5"),
    ],
)
def test_unusable_folders(tmp_path, layout, message):
    for name, content in layout.items():
        path = tmp_path / name
        if name.endswith("/"):
            path.mkdir(parents=True)
        elif content is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
        else:
            write_png(path, np.zeros((4, 4, 1), np.uint8))
    with pytest.raises(DataError, match=message):
        sources.check_source(str(tmp_path))


@pytest.mark.parametrize(
    "channels, image_range, low, high",
    [(1, None, 0.0, 255.0), (3, "0-1", 0.0, 1.0), (1, "-1-1", -1.0, 1.0)],
)
def test_image_folder_follows_the_model_input(folder, channels, image_range, low, high):
    splits = sources.load_source(str(folder), spec(8, 8, channels), image_range, batch_size=16)
    assert splits.num_classes == 3
    assert "60 images of 3 classes" in splits.description and "48 train / 12 validation" in (
        splits.description
    )
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in splits.validation], strict=True)
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (12, 8, 8, channels) and x.dtype == np.float32
    assert low <= x.min() and x.max() <= high and x.max() > (low + high) / 2
    assert set(y) <= {0, 1, 2}
    train = sum(len(b[1]) for b in splits.train)
    assert train == 48


def test_image_folder_pixels_match_the_files(folder):
    """Pixel for pixel: the folder's digit_0 images are the built-in digits scaled to 0-255."""
    splits = sources.load_source(str(folder), spec(8, 8, 1), "0-1", batch_size=64)
    x = np.concatenate(
        [b[0].numpy() for b in splits.train] + [b[0].numpy() for b in splits.validation]
    )
    digits, labels = sources.load_digits_for(spec(8, 8, 1)).train
    zeros = digits[labels == 0][:20]
    found = [np.abs(x - z).max(axis=(1, 2, 3)).min() for z in zeros]
    assert max(found) <= 0.5 / 255 + 1e-6  # every digit_0 image is there, up to PNG rounding


def test_image_folder_needs_a_fixed_image_input(folder):
    with pytest.raises(
        DataError, match=r"need an image input of fixed size.*Received: \(None, None, 3\)"
    ):
        sources.load_source(str(folder), spec(None, None, 3))
    with pytest.raises(DataError, match=r"grayscale, RGB or RGBA.*Received: \(8, 8, 2\)"):
        sources.load_source(str(folder), spec(8, 8, 2))


def test_digits_resized_and_repeated_over_channels():
    splits = sources.load_source("digits", spec(12, 12, 3))
    (x, _), (xt, _) = splits.train, splits.validation
    assert x.shape == (1400, 12, 12, 3) and xt.shape == (397, 12, 12, 3)
    np.testing.assert_array_equal(x[..., 0], x[..., 2])
    assert splits.num_classes == 10
    with pytest.raises(DataError, match=r"need a square image input.*Received: \(8, 12, 1\)"):
        sources.load_source("digits", spec(8, 12, 1))


def test_npz_sources(tmp_path):
    x = np.arange(50 * 4, dtype=np.float32).reshape(50, 4)
    y = np.arange(50) % 5
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    splits = sources.load_source(str(tmp_path / "xy.npz"), spec(4))
    np.testing.assert_array_equal(splits.train[0], x[:40])
    np.testing.assert_array_equal(splits.validation[1], y[40:])
    assert splits.num_classes == 5 and "40 train / 10 validation" in splits.description
    np.savez(tmp_path / "four.npz", x_train=x, y_train=y, x_test=x[:3], y_test=y[:3])
    assert len(sources.load_source(str(tmp_path / "four.npz"), spec(4)).validation[0]) == 3
    np.savez(tmp_path / "float_y.npz", x=x, y=y.astype(np.float32))
    assert sources.load_npz(tmp_path / "float_y.npz").num_classes is None
    np.savez(tmp_path / "short.npz", x_train=x, y_train=y[:7], x_test=x, y_test=y)
    with pytest.raises(DataError, match=r"do not pair up.*50 inputs and 7 labels"):
        sources.load_npz(tmp_path / "short.npz")
    np.savez(tmp_path / "other.npz", images=x)
    with pytest.raises(DataError, match=r"Expected x and y.*Received: \['images'\]"):
        sources.load_npz(tmp_path / "other.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"could not be read"):
        sources.load_npz(tmp_path / "broken.npz")


def test_image_range_fits_folders_only(folder):
    with pytest.raises(DataError, match=r"image_range sets the pixel range of an image folder"):
        sources.load_source("digits", spec(8, 8, 1), image_range="0-1")
    with pytest.raises(DataError, match=r"Unknown image range.*Received: image_range='0-100'"):
        sources.check_image_range(str(folder), "0-100")


def test_more_classes_than_outputs():
    splits = sources.DataSplits(None, None, "10 classes here", num_classes=10)
    sources.check_fits_outputs(splits, 10)
    sources.check_fits_outputs(splits, 1)  # a single sigmoid / regression output: not checked
    with pytest.raises(DataError, match=r"more classes than the model has outputs.*at most 3"):
        sources.check_fits_outputs(splits, 3)


def test_npz_labels_per_output(tmp_path):
    """y_<output name> arrays: a dict of labels, split like x; their counts must pair up."""
    x = np.arange(50 * 4, dtype=np.float32).reshape(50, 4)
    ids, boxes = np.arange(50) % 3, np.ones((50, 4), np.float32)
    np.savez(tmp_path / "two.npz", x=x, y_classes=ids, y_box=boxes)
    splits = sources.load_npz(tmp_path / "two.npz")
    assert sorted(splits.train[1]) == ["box", "classes"] and splits.num_classes is None
    np.testing.assert_array_equal(splits.train[1]["classes"], ids[:40])
    np.testing.assert_array_equal(splits.validation[1]["box"], boxes[40:])
    np.savez(
        tmp_path / "split.npz",
        x_train=x,
        y_train_classes=ids,
        y_train_box=boxes,
        x_test=x[:5],
        y_test_classes=ids[:5],
        y_test_box=boxes[:5],
    )
    assert len(sources.load_npz(tmp_path / "split.npz").validation[1]["box"]) == 5
    np.savez(tmp_path / "short.npz", x=x, y_classes=ids, y_box=boxes[:30])
    with pytest.raises(DataError, match=r"do not pair up.*40 inputs and \[40, 30\] labels"):
        sources.load_npz(tmp_path / "short.npz")
