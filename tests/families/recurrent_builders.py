"""Tiny recurrent models and data with a learnable rule, for tests/families/test_recurrent*.py.

Token-id models read VOCAB ids over LENGTH steps; the label says whether the
last token is in the upper half of the vocabulary, so a few epochs learn it.
Everything is small (units ~8-16) to keep each conversion to a few seconds.
"""

from __future__ import annotations

import numpy as np

VOCAB = 50
LENGTH = 8
FEATURES = 4
UNITS = 8


def token_data(n: int = 128, seed: int = 0, pad: bool = False):
    """(ids (n, LENGTH) int32 in [1, VOCAB), labels (n,)): whether the last token is
    in the upper half of the vocabulary. With `pad`, each row ends in zeros (the
    padding an Embedding(mask_zero=True) masks out) and the label reads the last
    token before them."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, size=(n, LENGTH)).astype("int32")
    if pad:
        lengths = rng.integers(3, LENGTH + 1, size=n)
        x[np.arange(LENGTH)[None, :] >= lengths[:, None]] = 0
    last = x[np.arange(n), (x > 0).sum(axis=1) - 1]  # the last token before the padding
    y = (last >= VOCAB // 2).astype("int32")
    return x, y


def feature_data(n: int = 128, seed: int = 0):
    """(float sequences (n, LENGTH, FEATURES), labels (n,)): is the first step's mean > 0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, LENGTH, FEATURES)).astype("float32")
    y = (x[:, 0].mean(axis=-1) > 0).astype("int32")
    return x, y


def _layer(keras, kind: str, units: int, **kwargs):
    return getattr(keras.layers, kind)(units, **kwargs)


RNN = "rnn"  # the recurrent layer's name in text_model (Keras numbers unnamed layers per session)


def text_model(
    keras,
    kind: str = "LSTM",
    *,
    bidirectional: bool = False,
    mask_zero: bool = False,
    units: int = UNITS,
    length: int | None = LENGTH,
    name: str | None = None,
):
    """Embedding(VOCAB) -> [Bidirectional] kind(units) -> Dense(2) logits."""
    inputs = keras.Input(shape=(length,), dtype="int32", name="tokens")
    h = keras.layers.Embedding(VOCAB, units, mask_zero=mask_zero)(inputs)
    layer = _layer(keras, kind, units, name=RNN)
    if bidirectional:
        layer = keras.layers.Bidirectional(_layer(keras, kind, units), name=RNN)
    h = layer(h)
    outputs = keras.layers.Dense(2)(h)
    return keras.Model(inputs, outputs, name=name or f"text_{kind.lower()}")


def stacked_model(keras, units: int = UNITS, length: int | None = LENGTH):
    """Float sequences -> LSTM(return_sequences) -> SimpleRNN -> Dense(2)."""
    inputs = keras.Input(shape=(length, FEATURES), name="frames")
    h = keras.layers.LSTM(units, return_sequences=True, name="lstm")(inputs)
    h = keras.layers.SimpleRNN(units, name="simple_rnn")(h)
    outputs = keras.layers.Dense(2)(h)
    return keras.Model(inputs, outputs, name="stacked_rnn")


def sequence_tagger(keras, units: int = UNITS):
    """Token ids -> masked Embedding -> GRU(return_sequences) -> per-step Dense(2)."""
    inputs = keras.Input(shape=(LENGTH,), dtype="int32", name="tokens")
    h = keras.layers.Embedding(VOCAB, units, mask_zero=True)(inputs)
    h = keras.layers.GRU(units, return_sequences=True, name="gru")(h)
    outputs = keras.layers.Dense(2)(h)
    return keras.Model(inputs, outputs, name="tagger_gru")


def fit(model, x, y, epochs: int = 3):
    """Compiles with a sparse cross-entropy on logits and trains a few epochs."""
    import importlib

    k = importlib.import_module(type(model).__module__.split(".")[0])  # keras or tf_keras
    loss = k.losses.SparseCategoricalCrossentropy(from_logits=True)
    if y.ndim == 1 and len(model.outputs[0].shape) == 3:  # per-step labels for a tagger
        y = np.repeat(y[:, None], model.outputs[0].shape[1], axis=1)
    model.compile(optimizer=k.optimizers.Adam(0.01), loss=loss, metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def run_tflite(content: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Runs a .tflite one sample at a time in ai_edge_litert (state reset before each),
    quantizing integer I/O; returns float outputs in the file's output order."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    ins = interpreter.get_input_details()
    outs = interpreter.get_output_details()
    results = [[] for _ in outs]
    for detail, array in zip(ins, inputs, strict=True):
        if tuple(detail["shape"][1:]) != array.shape[1:]:  # a free length (shape_signature -1)
            interpreter.resize_tensor_input(detail["index"], (1, *array.shape[1:]))
    interpreter.allocate_tensors()
    for i in range(len(inputs[0])):
        interpreter.reset_all_variables()
        for detail, array in zip(ins, inputs, strict=True):
            x = array[i : i + 1]
            scale, zero = detail["quantization"]
            if scale and np.dtype(detail["dtype"]).kind in "iu" and x.dtype.kind == "f":
                x = np.round(x / scale + zero)
            interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))
        interpreter.invoke()
        for j, detail in enumerate(outs):
            y = interpreter.get_tensor(detail["index"]).astype(np.float32)
            scale, zero = detail["quantization"]
            if scale and np.dtype(detail["dtype"]).kind in "iu":
                y = (y - zero) * scale
            results[j].append(y)
    return [np.concatenate(r) for r in results]


def sqnr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(np.mean((reference - other) ** 2))
    signal = float(np.mean(reference**2))
    return float("inf") if noise == 0 else 10 * np.log10(max(signal, 1e-12) / noise)


def op_names(content: bytes) -> set[str]:
    """The builtin ops of the main subgraph (a WHILE loop's body is another subgraph)."""
    from keras_squeeze.report.tflite_reader import read_tflite

    return set(read_tflite(content).opcode_counts())
