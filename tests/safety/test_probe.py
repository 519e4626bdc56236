"""probe: native readers in a child process; every bad ending is a ModelError naming the file."""

from __future__ import annotations

import pytest

from keras_squeeze.errors import ModelError
from keras_squeeze.safety import probe
from tests.fuzz import cases


def test_an_intact_tflite_reports_its_inputs_and_outputs():
    answer = probe.probe_tflite(cases.reference_tflite("small_cnn_int8.tflite"), "'m.tflite'")
    assert answer == {
        "inputs": [["serving_default_image:0", [1, 8, 8, 1], "int8"]],
        "outputs": [["StatefulPartitionedCall_1:0", [1, 10], "int8"]],
    }


def test_a_refusal_is_raised_or_returned():
    content = cases.reference_tflite("small_cnn_int8.tflite")[:5000]
    with pytest.raises(
        ModelError,
        match=r"'m\.tflite' could not be read by the TFLite runtime \(ai_edge_litert\)\. Expected "
        r"an intact \.tflite flatbuffer\. Received: ValueError: The model is not a valid Flatbuffer",
    ):
        probe.probe_tflite(content, "'m.tflite'")
    answer = probe.probe_tflite(content, "'m.tflite'", return_errors=True)
    assert answer["error"].startswith("ValueError: The model is not a valid Flatbuffer")


def test_a_crash_is_raised_even_when_errors_are_returned():
    content = cases.cut_root_vtable(cases.reference_tflite("small_cnn_float32.tflite"))
    with pytest.raises(ModelError, match=r"'m\.tflite' crashed the TFLite runtime.*\(SIGSEGV\)"):
        probe.probe_tflite(content, "'m.tflite'", return_errors=True)


def test_the_memory_limit_turns_a_huge_allocation_into_an_error(tmp_path):
    """A valid model whose activations need gigabytes: refused under the child's memory limit."""
    model = cases.unpack(cases.reference_tflite("small_cnn_float32.tflite"))
    graph = model.subgraphs[0]
    graph.tensors[graph.inputs[0]].shape = [3000, 100, 100, 1]
    path = tmp_path / "big.tflite"
    path.write_bytes(cases.repack(model))
    answer = probe.probe_tflite(path, "'big.tflite'", invoke=False)  # loads: the model is valid
    assert answer["inputs"][0][1] == [3000, 100, 100, 1]
    with pytest.raises(
        ModelError, match=r"'big\.tflite' could not be read by the TFLite runtime\. Expected"
    ):
        probe.run_in_child(
            "tflite",
            {"path": str(path)},
            "'big.tflite'",
            "TFLite runtime",
            "an intact .tflite",
            memory_limit=2 * 2**30,
        )


def test_an_hdf5_file_that_is_not_one(tmp_path):
    path = tmp_path / "m.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n and then nothing")
    with pytest.raises(
        ModelError,
        match=r"m\.h5' could not be read by the HDF5 library \(h5py\)\. Expected an intact HDF5 "
        r"file\. Received: OSError",
    ):
        probe.probe_hdf5(path, f"'{path}'")


def test_a_child_that_exits_without_an_answer_is_an_error():
    """Under 100 MB of address space, numpy's OpenBLAS gives up and exits 1 while importing."""
    with pytest.raises(
        ModelError,
        match=r"'x' could not be read by the reader in a child process\. Expected a file\. "
        r"Received: exit code 1",
    ):
        probe.run_in_child(
            "tflite",
            {"path": str(cases.TFLITE_MODELS / "small_cnn_int8.tflite")},
            "'x'",
            "reader",
            "a file",
            memory_limit=100 * 2**20,
        )
