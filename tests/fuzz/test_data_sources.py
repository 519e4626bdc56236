"""Data sources named on the command line, damaged: .npz files and image folders.

An image folder is read all the way (every batch of both splits), as
compress() would: a broken image must be refused before, not fail midway.
"""

from __future__ import annotations

import io
import pathlib
import tempfile

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from keras_squeeze.data import sources
from keras_squeeze.data.inputs import InputSpec
from tests.fuzz import cases
from tests.fuzz.strategies import budget, damaged


def _npz(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


GOOD_NPZ = _npz(x=np.random.default_rng(0).random((10, 4, 4, 1), np.float32), y=np.arange(10) % 3)
KEYS = ("x", "y", "x_train", "y_train", "x_test", "y_test", "z")
DTYPES = st.sampled_from(
    ["float32", "float16", "int64", "uint8", "bool", "complex64", "U3", "S2", "datetime64[s]"]
)
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))


@st.composite
def npz_files(draw):
    if draw(st.booleans()):
        return draw(damaged(GOOD_NPZ))
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=5))
    return _npz(**{k: draw(ARRAYS) for k in keys})


def _load_npz(path):
    splits = sources.load_npz(path)
    for x, y in (splits.train, splits.validation):
        assert len(x) == len(y) > 0 and x.dtype.kind in "biuf" and y.dtype.kind in "biuf"


@budget(150, deadline_s=10)
@given(content=npz_files())
def test_npz(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "data.npz"
        path.write_bytes(content)
        cases.assert_clean(cases.run_case(_load_npz, path, bound=10), [path])


def _encode(kind: str, image: np.ndarray) -> bytes:
    import tensorflow as tf

    if kind == "png16":
        return tf.io.encode_png(image.astype(np.uint16) * 257).numpy()
    if kind == "jpeg":
        return tf.io.encode_jpeg(image if image.shape[-1] in (1, 3) else image[..., :3]).numpy()
    if kind in ("bmp", "gif"):
        return _encode_with_pil(kind, image)
    return tf.io.encode_png(image).numpy()


def _encode_with_pil(kind: str, image: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    pixels = image[..., 0] if image.shape[-1] == 1 else image[..., :3]
    Image.fromarray(pixels).save(out, kind.upper())
    return out.getvalue()


@st.composite
def image_files(draw):
    """(relative path, bytes) of one image: any format, size and mode, sometimes damaged."""
    kind = draw(st.sampled_from(["png", "png16", "jpeg", "bmp", "gif"]))
    h, w, c = draw(st.integers(1, 24)), draw(st.integers(1, 24)), draw(st.sampled_from([1, 3, 4]))
    seed = draw(st.integers(0, 2**16))
    image = np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)
    data = _encode(kind, image)
    if draw(st.integers(0, 3)) == 0:
        data = draw(damaged(data))
    ext = {"png16": "png", "jpeg": draw(st.sampled_from(["jpg", "jpeg", "JPG"]))}.get(kind, kind)
    if draw(st.integers(0, 9)) == 0:  # the wrong extension
        ext = draw(st.sampled_from(["png", "jpg", "bmp", "gif"]))
    return ext, data


@st.composite
def image_folders(draw):
    classes = draw(st.integers(2, 3))
    return [[draw(image_files()) for _ in range(draw(st.integers(2, 5)))] for _ in range(classes)]


def _read_folder(root, channels):
    specs = [InputSpec("image", (8, 8, channels), "float32")]
    splits = sources.load_image_folder(root, specs, batch_size=4)
    for dataset in (splits.train, splits.validation):
        for x, _ in dataset:
            assert x.shape[1:] == (8, 8, channels)


def write_folder(root: pathlib.Path, folder) -> None:
    for c, images in enumerate(folder):
        for i, (ext, data) in enumerate(images):
            path = root / f"class_{c}" / f"{i}.{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


@budget(12)
@given(folder=image_folders(), channels=st.sampled_from([1, 3, 4]))
def test_image_folders(folder, channels):
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp) / "images"
        write_folder(root, folder)
        outcome = cases.run_case(_read_folder, root, channels, bound=120)
        cases.assert_clean(outcome, [root])
