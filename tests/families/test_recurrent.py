"""Recurrent models (LSTM, GRU, SimpleRNN, Bidirectional, stacked, return_sequences,
masking) through every post-training mode and the training recipes, each .tflite run
back in ai_edge_litert against its Keras model; token-id inputs; the refusals."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.core import models
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.errors import (
    DataError,
    ExportError,
    ModelError,
    RecipeError,
    VerificationError,
)
from keras_squeeze.export import recurrent
from keras_squeeze.export import tflite as tflite_export
from tests.families.recurrent_builders import (
    LENGTH,
    RNN,
    VOCAB,
    feature_data,
    fit,
    op_names,
    run_tflite,
    sequence_tagger,
    sqnr_db,
    stacked_model,
    text_model,
    token_data,
)

# Loose floors, stated as metrics: tiny models trained a few epochs.
MIN_SQNR_DB = {"float32": 60.0, "dynamic": 15.0, "float16": 30.0, "int8": 8.0, "int16x8": 20.0}
LOOP_FREE_MODES = ("int8", "int16x8")


@pytest.fixture(scope="module")
def tokens():
    return token_data(128)


@pytest.fixture(scope="module")
def padded():
    return token_data(128, seed=1, pad=True)


@pytest.fixture(scope="module")
def frames():
    return feature_data(96)


@pytest.fixture(scope="module")
def lstm_text(tokens):
    return fit(text_model(keras, "LSTM"), *tokens)


@pytest.fixture(scope="module")
def bigru_text(tokens):
    return fit(text_model(keras, "GRU", bidirectional=True), *tokens)


@pytest.fixture(scope="module")
def masked_lstm(padded):
    return fit(text_model(keras, "LSTM", mask_zero=True, name="masked_lstm"), *padded)


@pytest.fixture(scope="module")
def stacked(frames):
    return fit(stacked_model(keras), *frames)


def _paths(notes) -> dict[str, str]:
    """{layer name: path} from the notes `export.recurrent` writes."""
    found = {}
    for note in notes:
        for path in recurrent.PATHS:
            marker = f"): {path}, "
            if note.startswith("recurrent layer '") and marker in note:
                found[note.split("'")[1]] = path
    return found


def _check_runs_like_keras(content, model, x, mode):
    """The .tflite, run sample by sample in ai_edge_litert, agrees with `model`."""
    expected = np.asarray(model.predict(x, verbose=0))
    (got,) = run_tflite(content, [x])
    db = sqnr_db(expected, got.reshape(expected.shape))
    assert db >= MIN_SQNR_DB[mode], (mode, db)
    if mode in LOOP_FREE_MODES:
        assert "WHILE" not in op_names(content)  # never a calibrated loop
    return db


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_lstm_text_classifier_through_compress(lstm_text, tokens, mode):
    x, y = tokens
    result = ks.compress(
        lstm_text, recipe=mode, representative_data=x[:64], validation_data=(x, y), verbose=0
    )
    paths = _paths(result.report.notes)
    assert list(paths) == [RNN]
    if mode == "int8":
        # fused (calibrated through the tf_keras rebuild) or unrolled, whichever measured better
        assert paths[RNN] in (recurrent.FUSED, recurrent.UNROLLED)
        fused = recurrent.FUSED_OP in op_names(result.tflite)
        assert fused == (paths[RNN] == recurrent.FUSED)
        if not fused:
            assert any(
                n.startswith("LSTMs unrolled rather than fused") for n in result.report.notes
            )
    else:
        assert paths[RNN] == recurrent.FUSED
        assert recurrent.FUSED_OP in op_names(result.tflite)
    db = _check_runs_like_keras(result.tflite, lstm_text, x, mode)
    assert result.report.fidelity.sqnr_db == pytest.approx(db, abs=1.0)


@pytest.mark.parametrize("mode", ["dynamic", "float16"])
def test_keras3_lstm_as_a_loop_at_batch_one(lstm_text, tokens, mode):
    x, _ = tokens
    artifact = ks.export.to_tflite(lstm_text, quantization=mode, verification_data=x[:32])
    assert _paths(artifact.notes) == {RNN: recurrent.WHILE_LOOP}  # no tf_keras rebuild here
    _check_runs_like_keras(artifact.content, lstm_text, x[:32], mode)


@pytest.mark.parametrize("mode", ["float32", "dynamic", "float16", "int8"])
def test_bidirectional_gru_every_mode(bigru_text, tokens, mode):
    x, _ = tokens
    artifact = ks.export.to_tflite(bigru_text, quantization=mode, representative_data=x[:64])
    paths = _paths(artifact.notes)
    expected = recurrent.UNROLLED if mode in LOOP_FREE_MODES else recurrent.WHILE_LOOP
    assert list(paths.values()) == [expected]
    _check_runs_like_keras(artifact.content, bigru_text, x, mode)


@pytest.mark.parametrize("mode", ["float32", "dynamic", "float16", "int8", "int16x8"])
def test_stacked_return_sequences_every_mode(stacked, frames, mode):
    x, _ = frames
    artifact = ks.export.to_tflite(stacked, quantization=mode, representative_data=x[:64])
    paths = _paths(artifact.notes)
    assert sorted(paths) == ["lstm", "simple_rnn"]
    if mode in LOOP_FREE_MODES:
        assert set(paths.values()) == {recurrent.UNROLLED}
    _check_runs_like_keras(artifact.content, stacked, x, mode)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_masked_lstm_from_mask_zero(masked_lstm, padded, mode):
    x, y = padded
    result = ks.compress(
        masked_lstm, recipe=mode, representative_data=x[:64], validation_data=(x, y), verbose=0
    )
    (note,) = [n for n in result.report.notes if n.startswith("recurrent layer")]
    assert "a mask reaches it" in note
    _check_runs_like_keras(result.tflite, masked_lstm, x, mode)


def test_masked_gru_tagger_int8(padded):
    x, y = padded
    tagger = fit(sequence_tagger(keras), x, y, epochs=2)
    artifact = ks.export.to_tflite(tagger, quantization="int8", representative_data=x[:64])
    assert list(_paths(artifact.notes).values()) == [recurrent.UNROLLED]
    _check_runs_like_keras(artifact.content, tagger, x, "int8")


def test_tf_keras_lstm_takes_the_fused_op_for_int8(tokens):
    import tf_keras

    x, y = tokens
    model = fit(text_model(tf_keras, "LSTM"), x, y, epochs=2)
    artifact = ks.export.to_tflite(model, quantization="int8", representative_data=x[:64])
    (path,) = _paths(artifact.notes).values()
    ops = op_names(artifact.content)
    assert (path == recurrent.FUSED) == (recurrent.FUSED_OP in ops)
    assert any(n.startswith("LSTMs ") for n in artifact.notes) or path == recurrent.FUSED
    _check_runs_like_keras(artifact.content, model, x, "int8")


def test_variable_length_runs_as_a_loop_in_float_modes(tokens):
    x, _ = tokens
    model = text_model(keras, "GRU", length=None, name="free_length")
    artifact = ks.export.to_tflite(model, quantization="float32", verification_data=x[:16])
    assert list(_paths(artifact.notes).values()) == [recurrent.WHILE_LOOP]
    _check_runs_like_keras(artifact.content, model, x[:16], "float32")


def test_prune_cluster_qat_on_a_gru(tokens):
    x, y = tokens
    model = fit(text_model(keras, "GRU", units=16, name="gru16"), x, y, epochs=2)
    result = ks.compress(
        model,
        recipe="prune-cluster-qat",
        train_data=(x, y),
        validation_data=(x, y),
        epochs=1,
        verbose=0,
    )
    rows = {row["name"]: row for row in result.report.to_dict()["layers"]}
    assert rows[RNN]["sparsity"] > 0 and rows[RNN]["clusters"]
    assert _paths(result.report.notes) == {RNN: recurrent.UNROLLED}
    assert "WHILE" not in op_names(result.tflite)
    (got,) = run_tflite(result.tflite, [x])
    (expected,) = models.keras_outputs(
        result.model, data_inputs.Samples([x], None, len(x), None, "x")
    )
    assert sqnr_db(expected, got) >= 8.0
    assert result.report.to_dict()["accuracy"]["compressed"] >= 0.6


# --- a file saved under the JAX backend -----------------------------------------------

_MAKE_JAX_FILE = """
import os, sys
os.environ["KERAS_BACKEND"] = "jax"
import keras, numpy as np
assert keras.backend.backend() == "jax", keras.backend.backend()
sys.path.insert(0, sys.argv[2])
from tests.families.recurrent_builders import fit, text_model, token_data
fit(text_model(keras, "GRU", name="jax_gru"), *token_data(128), epochs=2).save(sys.argv[1])
"""


@pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed in this environment"
)
def test_a_file_saved_under_jax_loads_and_compresses(tmp_path, tokens):
    path = tmp_path / "jax_gru.keras"
    root = str(pathlib.Path(__file__).resolve().parents[2])
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run(
        [sys.executable, "-c", _MAKE_JAX_FILE, str(path), root],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    x, y = tokens
    result = ks.compress(
        str(path), recipe="int8", representative_data=x[:64], validation_data=(x, y), verbose=0
    )
    assert _paths(result.report.notes) == {RNN: recurrent.UNROLLED}
    loaded = keras.models.load_model(path)
    _check_runs_like_keras(result.tflite, loaded, x, "int8")
    assert result.report.to_dict()["accuracy"]["original"] > 0.6


# --- token ids --------------------------------------------------------------------------


def test_token_input_spec_knows_the_vocabulary(lstm_text):
    (spec,) = models.input_specs(lstm_text)
    assert (spec.name, spec.dtype, spec.vocab) == ("tokens", "int32", VOCAB)
    samples = data_inputs.synthetic_samples([spec], 64)
    ids = samples.inputs[0]
    assert ids.dtype == np.int32 and ids.shape == (64, LENGTH)
    assert ids.min() >= 0 and ids.max() < VOCAB and ids.max() >= 10  # the whole vocabulary


def test_synthetic_check_respects_a_small_vocabulary():
    inputs = keras.Input(shape=(LENGTH,), dtype="int32", name="ids")
    h = keras.layers.Embedding(4, 4)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(h)))
    artifact = ks.export.to_tflite(model)  # no data: synthetic ids in [0, 4)
    assert artifact.fidelity.sqnr_db > 60


def test_out_of_vocabulary_ids_are_refused(lstm_text, tokens):
    x, _ = tokens
    bad = x.copy()
    bad[3, 2] = VOCAB + 7
    message = r"outside the vocabulary of input 'tokens'.*\[0, 49\].*Received: ids in \[1, 57\]"
    with pytest.raises(DataError, match=message):
        ks.compress(lstm_text, recipe="int8", representative_data=bad, verbose=0)
    with pytest.raises(DataError, match=message):
        ks.export.to_tflite(lstm_text, quantization="int8", representative_data=bad)


def test_fractional_values_for_token_ids_are_refused(lstm_text, tokens):
    x, _ = tokens
    with pytest.raises(DataError, match=r"non-integer values for the integer input 'tokens'"):
        ks.export.to_tflite(
            lstm_text, quantization="int8", representative_data=x.astype("float32") + 0.5
        )


def test_int16x8_refuses_token_ids(lstm_text, tokens):
    x, _ = tokens
    with pytest.raises(RecipeError, match=r"'int16x8'.*integer input 'tokens' \(int32\)"):
        ks.compress(lstm_text, recipe="int16x8", representative_data=x, verbose=0)
    with pytest.raises(RecipeError, match=r"16x8 calibrator records no range"):
        ks.export.to_tflite(lstm_text, quantization="int16x8", representative_data=x)


# --- refusals ---------------------------------------------------------------------------


def test_variable_length_where_unrolling_is_needed(tokens):
    x, _ = tokens
    model = text_model(keras, "GRU", length=None, name="free_length")
    fix = r"variable length.*keras\.Input\(shape=\(T, \.\.\.\)\)"
    with pytest.raises(ModelError, match=fix):
        ks.compress(model, recipe="int8", representative_data=x, verbose=0)
    with pytest.raises(ModelError, match=fix + r".*with dynamic_batch=True"):
        ks.export.to_tflite(model, quantization="float32", dynamic_batch=True)


def test_a_while_loop_is_never_calibrated(bigru_text, tokens):
    x, _ = tokens
    samples = data_inputs.take_samples(x[:8], models.input_specs(bigru_text), 8, "x")
    with pytest.raises(ExportError, match=r"would convert to a WHILE loop.*crashes"):
        tflite_export.convert(bigru_text, "int8", samples)


class _TextModel(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed_text")
        self.embed = keras.layers.Embedding(VOCAB, 8)
        self.lstm = keras.layers.LSTM(8)
        self.head = keras.layers.Dense(2)

    def call(self, x):
        return self.head(self.lstm(self.embed(x)))


def test_subclassed_recurrent_model_is_refused(tokens):
    x, _ = tokens
    model = _TextModel()
    model(x[:2])
    fix = r"subclassed model 'subclassed_text' must be unrolled.*keras\.Input\(shape=\(T, "
    for mode in ("float32", "int8"):  # a loop at a free batch, or calibration (which crashes)
        with pytest.raises(ModelError, match=fix):
            ks.compress(model, recipe=mode, representative_data=x[:32], verbose=0)


@keras.saving.register_keras_serializable(package="test_recurrent")
def _double(t):
    return t * 2.0


def test_lstm_the_bridge_cannot_rebuild_keeps_its_loop(tokens):
    x, _ = tokens
    inputs = keras.Input(shape=(LENGTH,), dtype="int32", name="tokens")
    h = keras.layers.LSTM(8)(keras.layers.Embedding(VOCAB, 8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation=_double)(h))
    result = ks.compress(model, recipe="float32", representative_data=x[:32], verbose=0)
    assert any(
        "could not be rebuilt as tf_keras for the fused op" in n for n in result.report.notes
    )
    assert list(_paths(result.report.notes).values()) == [recurrent.WHILE_LOOP]
    _check_runs_like_keras(result.tflite, model, x[:32], "float32")


class _ExtraLSTM(keras.layers.LSTM):
    """An LSTM whose config misses an __init__ argument: it does not round-trip."""

    def __init__(self, units, extra, **kwargs):
        super().__init__(units, **kwargs)
        self.extra = extra


def test_copies_that_cannot_be_made_or_disagree(tokens):
    x, _ = tokens
    inputs = keras.Input(shape=(LENGTH,), dtype="int32")
    h = _ExtraLSTM(8, extra=1)(keras.layers.Embedding(VOCAB, 8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    names = [layer.name for layer in model.layers if isinstance(layer, _ExtraLSTM)]
    with pytest.raises(ExportError, match=r"could not be copied with its recurrent layers"):
        recurrent.unrolled_copy(model, names)
    samples = data_inputs.take_samples(x[:8], models.input_specs(model), 8, "x")
    with pytest.raises(VerificationError, match=r"test copy of .* does not reproduce the model"):
        recurrent.check_same(model, text_model(keras, "LSTM"), samples, "test copy")
