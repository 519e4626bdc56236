"""Quantization-aware training for a Coral Edge TPU.

    python examples/qat_edgetpu.py

Fine-tunes the example CNN with fake-quantization (int8 weights per-channel
symmetric, int8 activations per-tensor asymmetric), converts a batch-1 copy
with uint8 input and output, checks every op against the Edge TPU's op table,
and writes model_for_edgetpu.tflite. When edgetpu_compiler is installed,
save() also compiles model_edgetpu.tflite; otherwise this prints the command
to run where it is.
"""

from __future__ import annotations

import keras_squeeze as ks


def main(
    output_dir="squeezed/qat_edgetpu",
    epochs: int = 12,
    finetune_epochs: int = 3,
    image_size: int = 8,
    verbose=1,
):
    """Trains the example CNN, runs QAT, prepares and checks the Edge TPU model.

    Returns:
        The CompressionResult (result.report.edgetpu holds the analysis).
    """
    (x_train, y_train), (x_test, y_test) = ks.data.load_digits(image_size=image_size)
    model = ks.data.train_example_model(epochs=epochs, image_size=image_size)
    result = ks.compress(
        model,
        "qat",
        train_data=(x_train, y_train),
        validation_data=(x_test, y_test),
        epochs=finetune_epochs,
        edgetpu=True,
        inference_input_type="uint8",  # the Coral Python API feeds uint8 images
        inference_output_type="uint8",
        verbose=verbose,
    )
    out = result.save(output_dir, formats=("tflite",))
    print(result.report.table())
    edgetpu = result.report.edgetpu
    print(
        f"Edge TPU: {edgetpu['ops_on_edgetpu']} of {edgetpu['ops_total']} ops map, "
        f"blockers: {edgetpu['blockers'] or 'none'}"
    )
    if not edgetpu.get("compiled"):
        command = ks.edgetpu.compiler_command(
            "edgetpu_compiler", out / "model_for_edgetpu.tflite", out
        )
        print("edgetpu_compiler is not installed here; on a machine with it, run:")
        print("  " + " ".join(str(c) for c in command))
    return result


if __name__ == "__main__":
    main()
