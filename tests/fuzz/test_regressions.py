"""The damaged inputs the fuzz suite found, kept as explicit cases.

Each test names the input and what the library did before the fix (a raw
exception, a crash of the process, a hang, a two-line message).
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import struct

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.bench.benchmark_output import parse_output
from keras_squeeze.cli import bench as bench_script
from keras_squeeze.cli import common, compress, export
from keras_squeeze.data import sources
from keras_squeeze.data.inputs import InputSpec
from keras_squeeze.edgetpu import check_edgetpu, edgetpu_readiness, parse_compiler_log
from keras_squeeze.errors import BenchmarkError, DataError, ModelError
from keras_squeeze.report.tflite_reader import read_tflite
from keras_squeeze.safety import probe
from tests.fuzz import cases

DATA = pathlib.Path(__file__).parent / "data"
INT8 = "small_cnn_int8.tflite"
DAMAGED = (
    r"is not a readable TFLite model: it is damaged or truncated\. Expected an intact \.tflite"
)


def _vector_length_position(content: bytes) -> int:
    """Where the length of the largest constant's byte vector is stored."""
    model = cases.unpack(content)
    data = max((b.data for b in model.buffers if b.data is not None), key=len)
    at = content.find(bytes(np.asarray(data, np.uint8)))
    assert struct.unpack_from("<I", content, at - 4)[0] == len(data)
    return at - 4


@pytest.mark.parametrize("reader", [read_tflite, check_edgetpu, edgetpu_readiness])
def test_truncated_tflite(reader):
    """Was: struct.error "unpack_from requires a buffer of at least 9956 bytes"."""
    content = cases.reference_tflite(INT8)[:9000]
    with pytest.raises(ModelError, match=DAMAGED + r".*Received: 9,000 bytes \(struct\.error"):
        reader(content)


@pytest.mark.parametrize("reader", [read_tflite, check_edgetpu])
def test_vector_longer_than_the_file(reader):
    """Was: ValueError "buffer is smaller than requested size" (a flipped length byte)."""
    content = bytearray(cases.reference_tflite(INT8))
    struct.pack_into("<I", content, _vector_length_position(bytes(content)), 2**31 - 1)
    with pytest.raises(ModelError, match=DAMAGED + r".*buffer is smaller than requested size"):
        reader(bytes(content))


@pytest.mark.parametrize(
    "field, value, detail",
    [
        # Was: IndexError in the Edge TPU checks.
        ("op_input", 188, r"a tensor index of operator 0 \(CONV_2D\) 188 is out of range \(13"),
        ("graph_output", 99, r"a model output's tensor index 99 is out of range"),
        ("opcode_index", 7, r"the operator code of operator 0 7 is out of range \(4 in the file"),
        # Was: read silently as a tensor without data.
        ("tensor_buffer", 3145729, r"the buffer index of tensor 0 3145729 is out of range"),
        # Was: ValueError "cannot reshape array of size ...".
        ("buffer_bytes", 5, r"constant tensor '.*' holds 5 bytes; its shape \(.*\) of .* needs"),
        # Was: TypeError "'NoneType' object is not subscriptable".
        ("no_subgraphs", 0, r"the model has no subgraph"),
    ],
)
def test_indices_and_sizes_that_do_not_fit(field, value, detail):
    content = cases.edit_tflite(cases.reference_tflite(INT8), field, 0, value)
    with pytest.raises(ModelError, match=DAMAGED + r".*" + detail):
        check_edgetpu(content)


def test_sparse_constant_that_would_expand_past_memory(tmp_path):
    """A sparse constant whose shape claims 2**40 elements is refused before any allocation."""
    from ai_edge_litert import schema_py_generated as schema

    model = cases.unpack(cases.reference_tflite(INT8))
    tensor = next(t for t in model.subgraphs[0].tensors if model.buffers[t.buffer].data is not None)
    sparsity = schema.SparsityParametersT()
    dense = schema.DimensionMetadataT()
    dense.format, dense.denseSize = 0, 2**20
    sparsity.traversalOrder, sparsity.dimMetadata = [0, 1], [dense, dense]
    tensor.sparsity, tensor.shape = sparsity, [2**20, 2**20]
    with pytest.raises(ModelError, match=DAMAGED + r".*would expand .* stored bytes to"):
        read_tflite(cases.repack(model), f"'{tmp_path / 'sparse.tflite'}'")


@pytest.fixture(scope="module")
def vtable_cut(tmp_path_factory):
    """A .tflite that crashes ai_edge_litert's Interpreter (SIGSEGV) when loaded in-process."""
    path = tmp_path_factory.mktemp("crash") / "cut.tflite"
    path.write_bytes(cases.cut_root_vtable(cases.reference_tflite("small_cnn_float32.tflite")))
    return path


def test_a_file_that_crashes_the_interpreter_is_an_error_of_the_benchmark(vtable_cut):
    """Was: the process died (SIGSEGV) in ks.benchmark(measure_memory=False)."""
    with pytest.raises(
        ModelError,
        match=r"cut\.tflite' crashed the TFLite runtime \(ai_edge_litert\) \(SIGSEGV\) in the child "
        r"process reading it: the file is damaged or hostile\. Expected an intact \.tflite",
    ):
        ks.benchmark(vtable_cut, measure_memory=False, min_runs=1, min_seconds=0)
    with pytest.raises(
        BenchmarkError, match=r"Model 'cut' crashed the TFLite runtime \(SIGSEGV\) in the child"
    ):
        ks.benchmark(vtable_cut, min_runs=1, min_seconds=0)
    with pytest.raises(ModelError, match=DAMAGED + r".*the model has no subgraph"):
        check_edgetpu(vtable_cut)


def test_a_tensor_name_that_is_not_utf8():
    """Was: UnicodeDecodeError from get_input_details() in ks.benchmark."""
    model = cases.unpack(cases.reference_tflite(INT8))
    graph = model.subgraphs[0]
    graph.tensors[graph.inputs[0]].name = b"\xff\xfeimage"
    content = cases.repack(model)
    for measure_memory in (False, True):
        with pytest.raises(BenchmarkError, match=r"(?i)model 'model_1'.*UnicodeDecodeError"):
            ks.benchmark(content, measure_memory=measure_memory, min_runs=1, min_seconds=0)


def test_a_directory_given_as_the_tflite(tmp_path):
    """Was: "does not exist" for a directory that does exist."""
    with pytest.raises(ModelError, match=r"The \.tflite file to check is a directory"):
        check_edgetpu(tmp_path)
    with pytest.raises(ModelError, match=r"The \.tflite file to benchmark is a directory"):
        ks.benchmark(tmp_path, measure_memory=False)


def test_an_hdf5_file_that_hangs_the_reader():
    """One byte changed in an .h5 model makes HDF5 loop forever; the child is stopped."""
    path = DATA / "hdf5_hang.h5"
    with pytest.raises(
        ModelError,
        match=r"hdf5_hang\.h5' did not finish loading in the HDF5 library \(h5py\) within 3 s "
        r"\(the child process reading it was stopped\): the file is damaged or hostile",
    ):
        probe.probe_hdf5(path, f"'{path}'", timeout=3)


def test_load_model_on_the_hanging_hdf5_file(monkeypatch):
    monkeypatch.setattr(probe, "DEFAULT_TIMEOUT_S", 3.0)
    with pytest.raises(ModelError, match=r"hdf5_hang\.h5' did not finish loading"):
        ks.load_model(DATA / "hdf5_hang.h5")


def test_damaged_saved_models(tmp_path):
    """Was: OSError / DataLossError / KeyError from tf.saved_model.load."""
    import shutil

    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.export(tmp_path / "export", verbose=0)
    for member, cut, message in (
        ("saved_model.pb", 100, r"'.*broken_100' has a damaged saved_model\.pb\. Expected"),
        (
            "variables/variables.index",
            10,
            r"The SavedModel could not be loaded: it is damaged or incomplete\. Expected .*"
            r"Received: '.*broken_10'",
        ),
    ):
        broken = tmp_path / f"broken_{cut}"
        shutil.copytree(tmp_path / "export", broken)
        target = broken / member
        target.write_bytes(target.read_bytes()[:cut])
        with pytest.raises(ModelError, match=message):
            ks.load_model(broken)
    (tmp_path / "pb_dir" / "saved_model.pb").mkdir(parents=True)  # a directory for the file
    with pytest.raises(ModelError, match=r"not a SavedModel\. Expected a directory with"):
        ks.load_model(tmp_path / "pb_dir")


def test_compiler_log_with_impossible_numbers():
    """Was: ValueError "could not convert string to float: '6..7'" and int() past 4300 digits."""
    log = parse_compiler_log(
        "Input size: 6..7MiB\nTotal number of operations: " + "9" * 5000 + "\nOutput size: 1.5KiB"
    )
    assert log.input_size_bytes is None and log.total_ops is None
    assert log.output_size_bytes == 1536


def test_benchmark_output_with_a_huge_count():
    """Was: ValueError "Exceeds the limit (4300 digits) for integer string conversion"."""
    assert parse_output("count=" + "9" * 5000 + " curr=5").inference is None
    assert parse_output("count=5 curr=5").inference.avg_us == 5.0


@pytest.mark.parametrize(
    "arrays, key",
    [
        ({"x": np.array(5.0), "y": np.arange(3)}, "x"),  # was TypeError: len() of unsized object
        ({"x": np.zeros((4, 2)), "y": np.array(1)}, "y"),  # was IndexError
        ({"x": np.array(["a", "b"]), "y": np.arange(2)}, "x"),
        ({"x": np.zeros((4, 2), np.complex64), "y": np.arange(4)}, "x"),
    ],
)
def test_npz_arrays_without_a_sample_axis(tmp_path, arrays, key):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    with pytest.raises(
        DataError, match=rf"The \.npz's array '{key}' is not a numeric array with a sample axis"
    ):
        sources.load_npz(path)


def _parse(script, *argv):
    from absl.testing import flagsaver

    saved = flagsaver.save_flag_values(script.FLAGS)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
            common.parse_flags(script.PROGRAM, script.FLAGS, [script.PROGRAM, *argv])
    finally:
        flagsaver.restore_flag_values(saved, script.FLAGS)
    return exit_info.value.code, [ln for ln in err.getvalue().splitlines() if ln.strip()]


@pytest.mark.parametrize("script", [compress, export, bench_script])
def test_a_binary_flag_file(script, tmp_path):
    """Was: UnicodeDecodeError out of absl's flag parsing."""
    flagfile = tmp_path / "bad.flags"
    flagfile.write_bytes(b"\xfc\x00--model=x\n")
    code, lines = _parse(script, f"--flagfile={flagfile}")
    assert code == 2 and len(lines) == 1
    assert f"The flag file '{flagfile}' is not text. Expected one --flag=value per line" in lines[0]


def test_a_flag_file_that_includes_itself(tmp_path):
    """Was: absl's warning line, then the job ran (or a second, error line)."""
    flagfile = tmp_path / "loop.flags"
    flagfile.write_text(f"--flagfile={flagfile}\n--recipe=int8\n")
    code, lines = _parse(compress, f"--flagfile={flagfile}")
    assert code == 2 and len(lines) == 1
    assert f"The flag file '{flagfile}' includes itself" in lines[0]
    code, lines = _parse(export, f"--flagfile={flagfile}")  # and --model is missing
    assert code == 2 and len(lines) == 1


PROFILE = (
    "Profiling Info for Regular Benchmark Runs:\n"
    "============================== Run Order ==============================\n"
    "\t[node type]\t[first]\t[avg ms]\t[%]\t[cdf%]\t[mem KB]\t[times called]\t[Name]\n"
)


@pytest.mark.parametrize(
    "parse, text",
    [
        # Was: minutes (the row pattern backtracked over blanks and digit runs, O(n^3)).
        (parse_output, PROFILE + "CONV_2D" + " " * 20000 + "1" * 20000 + "x\n"),
        # Was: seconds growing with the square of the line (the logcat prefix pattern).
        (parse_output, "05-31 10:31:13.022 21767 21767 I tflite " + " " * 64000 + "x"),
        (parse_output, "count=50 first=" + "1" * 20000 + "x"),
        # Was: quadratic in the compiler's text fields and operator rows.
        (parse_compiler_log, "Input model:" + " " * 30000 + "x" + " " * 30000 + "\x00"),
        (parse_compiler_log, "Operator  Count  Status\nADD  1  x" + " " * 30000 + "y\x00"),
    ],
)
def test_damaged_logs_are_read_in_linear_time(parse, text):
    outcome = cases.run_case(parse, text, bound=2)
    assert outcome.kind == cases.READ, outcome


def test_a_flag_name_of_thousands_of_characters(tmp_path):
    """Was: RecursionError from absl's flag-name suggestions (and minutes below 1,000 chars)."""
    flagfile = tmp_path / "long.flags"
    flagfile.write_text("-" * 5000 + "recipe=prune\n")
    outcome = cases.run_case(_parse, compress, f"--flagfile={flagfile}", bound=5)
    assert outcome.kind == cases.READ, outcome
    code, lines = _parse(compress, f"--flagfile={flagfile}")
    assert code == 2 and len(lines) == 1
    assert "Unknown flag. Expected a flag of keras-squeeze-compress" in lines[0]
    assert "a flag name of 5,006 characters" in lines[0]


def test_paths_with_a_nul_byte(tmp_path):
    """Was: ValueError "embedded null byte" from open() and pathlib."""
    flagfile = tmp_path / "nul.flags"
    flagfile.write_bytes(b"--flagfile=a\x00b\n")
    code, lines = _parse(compress, f"--flagfile={flagfile}")
    assert code == 2 and len(lines) == 1 and "A flag file cannot be opened" in lines[0]
    code, lines = _parse(export, "--model=m\x00.keras")
    assert code == 2 and len(lines) == 1 and "holds a NUL byte" in lines[0]
    nul = "model\x00.keras"
    with pytest.raises(ModelError, match=r"The model path is not a usable path.*NUL byte"):
        ks.load_model(nul)
    with pytest.raises(ModelError, match=r"to check is not a usable path.*NUL byte"):
        check_edgetpu(nul)
    with pytest.raises(DataError, match=r"The data source is not a usable path.*NUL byte"):
        sources.check_source("data\x00.npz")
    import keras

    from keras_squeeze.errors import OutputError

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(OutputError, match=r"The output directory is not a usable path"):
        ks.compress(model, "dynamic", verbose=0).save("out\x00")


def _folder(root: pathlib.Path, odd: dict[str, bytes]) -> pathlib.Path:
    """Two classes of four good 6x6 PNGs each, plus the `odd` files (relative path: bytes)."""
    from tests.data.image_folders import write_png

    for c in ("a", "b"):
        for i in range(4):
            write_png(root / c / f"{i}.png", np.full((6, 6, 3), 40 * i, np.uint8))
    for name, data in odd.items():
        (root / name).write_bytes(data)
    return root


def _png(shape) -> bytes:
    import tensorflow as tf

    return tf.io.encode_png(np.zeros(shape, np.uint8)).numpy()


def _jpeg() -> bytes:
    import tensorflow as tf

    return tf.io.encode_jpeg(np.zeros((6, 6, 3), np.uint8)).numpy()


@pytest.mark.parametrize(
    "odd, channels, detail",
    [
        ({"a/empty.png": b""}, 3, r"a/empty\.png' \("),
        ({"b/cut.png": _png((6, 6, 3))[:40]}, 3, r"b/cut\.png' \("),
        ({"a/photo.jpg": _jpeg()}, 4, r"a/photo\.jpg' \(JPEG does not support 4 channels"),
        (
            {"b/huge.png": _png((2, 2, 1))[:16] + struct.pack(">II", 70000, 70000)},
            1,
            r"b/huge\.png' \(4,900,000,000 pixels, more than 268,435,456\)",
        ),
    ],
)
def test_image_folders_with_unreadable_images(tmp_path, odd, channels, detail):
    """Was: a TensorFlow InvalidArgumentError while iterating the dataset, midway."""
    root = _folder(tmp_path / "images", odd)
    specs = [InputSpec("image", (6, 6, channels), "float32")]
    with pytest.raises(
        DataError, match=r"The image folder holds 1 image\(s\) that cannot be read as .*" + detail
    ):
        sources.load_image_folder(root, specs)
