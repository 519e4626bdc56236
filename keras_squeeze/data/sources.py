"""Data sources named by a string, as the command-line scripts take them.

- "digits": the built-in digits (1,400 train / 397 test), resized bilinearly
  to the model's square image input and repeated over its channels.
- a .npz file holding `x` and `y` (split 80/20 in order) or `x_train`,
  `y_train`, `x_test`, `y_test`; for a model with several outputs the labels
  are one array per output, named `y_<output name>` (or `y_train_<output
  name>` and `y_test_<output name>`).
- a folder with one sub-folder per class (Keras' `image_dataset_from_directory`
  conventions: classes are the sub-folder names in sorted order; .bmp, .gif,
  .jpeg, .jpg, .png files at any depth below them). Images are resized to the
  model's input size, read as grayscale / RGB / RGBA to match its channels,
  and split 80/20 with a fixed seed (the validation part unshuffled). Pixel
  values are scaled from [0, 255] to `image_range`.

Example:
    >>> splits = load_source("digits", input_specs(model))
    >>> ks.compress(model, "int8", train_data=splits.train,
    ...             validation_data=splits.validation)
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import struct

import numpy as np

from keras_squeeze.errors import DataError
from keras_squeeze.safety.paths import fs_path

DIGITS = "digits"
NPZ = "npz"
FOLDER = "folder"
# keras.utils.image_dataset_from_directory's formats (ALLOWLIST_FORMATS).
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# Pixel range of folder images: (scale, offset) applied to values in [0, 255].
IMAGE_RANGES = {"0-255": (1.0, 0.0), "0-1": (1.0 / 255.0, 0.0), "-1-1": (1.0 / 127.5, -1.0)}
DEFAULT_IMAGE_RANGE = "0-255"
VALIDATION_SPLIT = 0.2
SPLIT_SEED = 1337
COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}
# Larger images are refused from their header (a decompression bomb).
MAX_IMAGE_PIXELS = 1 << 28


@dataclasses.dataclass
class DataSplits:
    """Training and validation data from one source.

    Attributes:
        train: (x, y) arrays, or a tf.data.Dataset of (x, y) batches; also the
            representative data that calibrates int8 / int16x8.
        validation: the same kinds, held out.
        description: what was loaded, for the log and the report.
        num_classes: number of classes, when the labels are class ids.
    """

    train: object
    validation: object
    description: str
    num_classes: int | None = None


@dataclasses.dataclass(frozen=True)
class FolderScan:
    """The class sub-folders of an image folder and their image counts."""

    path: pathlib.Path
    class_names: tuple[str, ...]
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)


def source_kind(source: str) -> str:
    """ "digits", "npz" (a path ending in .npz) or "folder" (any other path)."""
    if source == DIGITS:
        return DIGITS
    return NPZ if str(source).lower().endswith(".npz") else FOLDER


def _image_files(directory: pathlib.Path) -> list[pathlib.Path]:
    """The images Keras' image_dataset_from_directory reads below `directory`, sorted."""
    found = []
    for where, _, files in os.walk(directory, followlinks=False):
        found += [pathlib.Path(where) / f for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def _count_images(directory: pathlib.Path) -> int:
    return len(_image_files(directory))


def scan_image_folder(path) -> FolderScan:
    """Checks an image folder has images in at least two class sub-folders.

    Raises:
        DataError: not a directory, no class sub-folders, no images, only one
            class with images, or too few images to hold out 20% for validation.
    """
    root = fs_path(path, "image folder", DataError)
    if not root.is_dir():
        raise DataError(
            f"The image folder does not exist. Expected a directory with one sub-folder per "
            f"class. Received: '{root}'"
        )
    names = tuple(sorted(d.name for d in root.iterdir() if d.is_dir()))
    counts = tuple(_count_images(root / n) for n in names)
    formats = ", ".join(IMAGE_EXTENSIONS)
    if not names:
        raise DataError(
            f"The image folder has no class sub-folders. Expected one sub-folder per class "
            f"holding its images ({formats}). Received: '{root}' with no sub-folders"
        )
    if sum(counts) == 0:
        raise DataError(
            f"The image folder holds no images. Expected {formats} files in its class "
            f"sub-folders. Received: '{root}' with sub-folders {list(names)} and no images"
        )
    with_images = [n for n, c in zip(names, counts, strict=True) if c]
    if len(with_images) < 2:
        raise DataError(
            "The image folder has images of one class only. Expected at least two class "
            f"sub-folders with images. Received: '{root}' with images in {with_images} only"
        )
    if int(VALIDATION_SPLIT * sum(counts)) == 0:
        raise DataError(
            f"The image folder has too few images to hold out {VALIDATION_SPLIT:.0%} for "
            f"validation. Expected at least {int(np.ceil(1 / VALIDATION_SPLIT))} images. "
            f"Received: {sum(counts)} in '{root}'"
        )
    return FolderScan(root, names, counts)


def _declared_pixels(data: bytes) -> int | None:
    """Width x height from a PNG, GIF or BMP header (None for other formats)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
    elif data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
    elif data[:2] == b"BM" and len(data) >= 26:
        width, height = (abs(v) for v in struct.unpack("<ii", data[18:26]))
    else:
        return None
    return width * height


def check_images(scan: FolderScan, channels: int) -> None:
    """Decodes every image of the folder as Keras will, so a broken one is named before any work.

    Keras reads an image folder lazily: an empty, truncated or unreadable
    file, or one that cannot be read in the model's color mode (a JPEG as
    RGBA, a BMP as grayscale), would otherwise stop training midway with a
    TensorFlow error. Images larger than MAX_IMAGE_PIXELS are refused from
    their header, before decoding.

    Raises:
        DataError: naming the first file that cannot be read, and how many cannot.
    """
    import tensorflow as tf

    mode = COLOR_MODES[channels]
    bad: list[tuple[pathlib.Path, str]] = []
    for path in _image_files(scan.path):
        try:
            data = path.read_bytes()
            pixels = _declared_pixels(data)
            if pixels is not None and pixels > MAX_IMAGE_PIXELS:
                bad.append((path, f"{pixels:,} pixels, more than {MAX_IMAGE_PIXELS:,}"))
                continue
            tf.io.decode_image(data, channels=channels, expand_animations=False)
        except OSError as e:
            bad.append((path, e.strerror or str(e)))
        except tf.errors.OpError as e:
            text = re.sub(r"\{\{function_node[^}]*\}\}\s*", "", e.message or type(e).__name__)
            bad.append((path, " ".join(text.split())[:200]))
    if bad:
        (first, reason), more = bad[0], len(bad) - 1
        raise DataError(
            f"The image folder holds {len(bad)} image(s) that cannot be read as {mode}. Expected "
            f"{', '.join(IMAGE_EXTENSIONS)} files TensorFlow decodes (in {mode} for a model "
            f"input with {channels} channel(s)). Received: '{first}' ({reason})"
            + (f" and {more} more" if more else "")
        )


def check_exists(source: str) -> str:
    """Checks a source names the digits, an existing .npz file or a directory; returns its kind.

    Raises:
        DataError: a path that does not exist (or a .npz that is not a file).
    """
    kind = source_kind(source)
    path = fs_path(source, "data source", DataError).expanduser()
    if (kind == NPZ and not path.is_file()) or (kind == FOLDER and not path.is_dir()):
        raise DataError(
            "Unknown data source. Expected 'digits', an existing .npz file with x/y arrays "
            f"or an image folder with one sub-folder per class. Received: '{source}'"
        )
    return kind


def check_source(source: str) -> str:
    """Checks a source exists and is usable before any work; returns its kind.

    Raises:
        DataError: a path that does not exist, or an unusable image folder.
    """
    kind = check_exists(source)
    if kind == FOLDER:
        scan_image_folder(pathlib.Path(source).expanduser())
    return kind


def _image_shape(specs, what: str) -> tuple:
    if len(specs) != 1:
        raise DataError(
            f"The command line feeds single-input models. Expected one model input. "
            f"Received: {len(specs)} inputs ({', '.join(s.name for s in specs)})"
        )
    shape = tuple(specs[0].shape)
    if len(shape) != 3 or shape[0] is None or shape[1] is None:
        raise DataError(
            f"{what} need an image input of fixed size. Expected a model input of shape "
            f"(height, width, channels). Received: {shape}"
        )
    return shape


def load_digits_for(specs) -> DataSplits:
    """The built-in digits at the model's square input size and channel count."""
    from keras_squeeze.data.digits import NUM_CLASSES, load_digits

    shape = _image_shape(specs, "The built-in digits")
    if shape[0] != shape[1]:
        raise DataError(
            "The built-in digits need a square image input. Expected a model input of shape "
            f"(size, size, channels). Received: {shape}"
        )
    (x, y), (xt, yt) = load_digits(int(shape[0]))
    if shape[2] not in (None, 1):
        x, xt = np.repeat(x, shape[2], axis=-1), np.repeat(xt, shape[2], axis=-1)
    return DataSplits(
        (x, y),
        (xt, yt),
        f"the built-in digits at {shape[0]}x{shape[1]}x{shape[2] or 1} "
        f"({len(x):,} train / {len(xt):,} validation)",
        NUM_CLASSES,
    )


def _num_classes(*labels: np.ndarray) -> int | None:
    if not all(y.ndim == 1 and np.issubdtype(y.dtype, np.integer) for y in labels):
        return None
    return int(max(y.max(initial=-1) for y in labels)) + 1


def _check_arrays(arrays: dict, keys, path: pathlib.Path) -> None:
    """Raises DataError unless each array is numeric with a sample axis."""
    for key in keys:
        a = arrays[key]
        if a.ndim == 0 or a.dtype.kind not in "biuf":
            raise DataError(
                f"The .npz's array '{key}' is not a numeric array with a sample axis. Expected "
                "bool, integer or float arrays of shape (samples, ...). Received: dtype "
                f"{a.dtype}, shape {a.shape} in '{path}'"
            )


def load_npz(path) -> DataSplits:
    """x/y (split 80/20 in order) or x_train/y_train/x_test/y_test from a .npz."""
    path = fs_path(path, ".npz file", DataError)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = dict(npz)
    except Exception as e:
        raise DataError(
            "The .npz could not be read. Expected a numpy .npz. Received: "
            f"'{path}' ({type(e).__name__}: {' '.join(str(e).split())[:300]})"
        ) from e
    used = [k for k in arrays if k in ("x", "x_train", "x_test") or k.split("_")[0] == "y"]
    _check_arrays(arrays, used, path)
    labels = {part: _npz_labels(arrays, part) for part in ("y", "y_train", "y_test")}
    if {"x_train", "x_test"} <= set(arrays) and labels["y_train"] is not None:
        pairs = [(arrays["x_train"], labels["y_train"]), (arrays["x_test"], labels["y_test"])]
    elif "x" in arrays and labels["y"] is not None:
        split = int(len(arrays["x"]) * (1 - VALIDATION_SPLIT))
        x, y = arrays["x"], labels["y"]
        pairs = [(x[:split], _head(y, split, True)), (x[split:], _head(y, split, False))]
    else:
        raise DataError(
            "The .npz does not hold the expected arrays. Expected x and y, or x_train, y_train, "
            "x_test and y_test (for a model with several outputs y_<output name> instead of y, "
            f"y_train_<output name> and y_test_<output name>). Received: {sorted(arrays)} "
            f"in '{path}'"
        )
    for x, y in pairs:
        if y is None or any(len(x) != len(v) for v in _leaves(y)) or len(x) == 0:
            y = y if y is not None else []
            counts = [len(v) for v in _leaves(y)]
            raise DataError(
                "The .npz's inputs and labels do not pair up. Expected as many labels as "
                f"inputs, at least one of each. Received: {len(x)} inputs and "
                f"{counts[0] if len(counts) == 1 else counts} labels in '{path}'"
            )
    (x, y), (xt, yt) = pairs
    return DataSplits(
        (x, y),
        (xt, yt),
        f"{path.name} ({len(x):,} train / {len(xt):,} validation)",
        _num_classes(y, yt) if not isinstance(y, dict) else None,
    )


def _npz_labels(arrays: dict, part: str):
    """The array `part` ("y", "y_train", "y_test"), else {output name: array} from the
    arrays named `part`_<output name>, else None."""
    if part in arrays:
        return arrays[part]
    skip = ("y_train", "y_test") if part == "y" else ()
    named = {
        key[len(part) + 1 :]: value
        for key, value in arrays.items()
        if key.startswith(part + "_") and not key.startswith(skip)
    }
    return named or None


def _leaves(y) -> list:
    return list(y.values()) if isinstance(y, dict) else [y]


def _head(y, split: int, first: bool):
    if isinstance(y, dict):
        return {k: _head(v, split, first) for k, v in y.items()}
    return y[:split] if first else y[split:]


def load_image_folder(
    path, specs, image_range: str | None = None, batch_size: int = 32
) -> DataSplits:
    """An image folder as tf.data train / validation datasets of (images, class ids).

    Raises:
        DataError: an unusable folder, an image that cannot be read in the
            model's color mode (see `check_images`), a model input that is not
            a fixed-size image with 1, 3 or 4 channels, or an unknown image_range.
    """
    scan = scan_image_folder(path)
    shape = _image_shape(specs, "Image folders")
    channels = shape[2] or 3
    if channels not in COLOR_MODES:
        raise DataError(
            "Images are read as grayscale, RGB or RGBA. Expected a model input with 1, 3 or 4 "
            f"channels. Received: {shape}"
        )
    check_image_range(str(scan.path), image_range)
    check_images(scan, channels)
    image_range = image_range or DEFAULT_IMAGE_RANGE
    import keras
    import tensorflow as tf

    train, validation = keras.utils.image_dataset_from_directory(
        str(scan.path),
        labels="inferred",
        label_mode="int",
        class_names=list(scan.class_names),
        color_mode=COLOR_MODES[channels],
        batch_size=batch_size,
        image_size=(int(shape[0]), int(shape[1])),
        shuffle=True,
        seed=SPLIT_SEED,
        validation_split=VALIDATION_SPLIT,
        subset="both",
        verbose=False,
    )
    scale, offset = IMAGE_RANGES[image_range]

    def rescale(x, y):
        return tf.cast(x, tf.float32) * scale + offset, y

    n_val = int(VALIDATION_SPLIT * scan.total)
    return DataSplits(
        train.map(rescale),
        validation.map(rescale),
        f"{scan.total:,} images of {len(scan.class_names)} classes in '{scan.path}' at "
        f"{shape[0]}x{shape[1]}x{channels}, pixels in [{image_range.replace('-1-1', '-1, 1')}] "
        f"({scan.total - n_val:,} train / {n_val:,} validation)",
        len(scan.class_names),
    )


def check_image_range(source: str, image_range: str | None) -> None:
    """image_range fits an image folder only.

    Raises:
        DataError: image_range with "digits" or a .npz, or an unknown range.
    """
    if image_range is None:
        return
    if source_kind(source) != FOLDER:
        raise DataError(
            "image_range sets the pixel range of an image folder. Expected an image folder as "
            f"the data. Received: data={source!r}, image_range={image_range!r}"
        )
    if image_range not in IMAGE_RANGES:
        raise DataError(
            f"Unknown image range. Expected one of {list(IMAGE_RANGES)}. "
            f"Received: image_range={image_range!r}"
        )


def load_source(
    source: str, specs, image_range: str | None = None, batch_size: int = 32
) -> DataSplits:
    """Loads "digits", a .npz or an image folder for a model with input `specs`.

    Args:
        source: "digits", a .npz path or an image folder path.
        specs: the model's input specs (`keras_squeeze.core.models.input_specs`).
        image_range: pixel range of folder images: "0-255" (Keras' default),
            "0-1" or "-1-1".
        batch_size: batch size of folder datasets.

    Raises:
        DataError: the source does not exist, cannot be read, or does not fit.
    """
    kind = check_source(source)
    check_image_range(source, image_range)
    if kind == DIGITS:
        return load_digits_for(specs)
    if kind == NPZ:
        return load_npz(source)
    return load_image_folder(source, specs, image_range, batch_size)


def check_fits_outputs(splits: DataSplits, units: int | None) -> None:
    """Checks class ids fit the model's output width (a label >= units cannot train).

    Raises:
        DataError: more classes than output units.
    """
    if splits.num_classes is None or units is None or units == 1:
        return
    if splits.num_classes > units:
        raise DataError(
            f"The data has more classes than the model has outputs. Expected at most {units} "
            f"classes. Received: {splits.num_classes} classes in {splits.description}"
        )
