"""Prune + quantize: 75% of the weights set to zero, fine-tuned, then full int8.

    python examples/prune_and_quantize.py

Pruned weights are stored as zeros: the .tflite is as large as a dense int8
one, but it gzips (or zips into an app bundle) to a fraction of that. The
report gives each layer's measured zeros in the .tflite next to its target.
"""

from __future__ import annotations

import keras_squeeze as ks


def main(
    output_dir="squeezed/prune_and_quantize",
    epochs: int = 12,
    finetune_epochs: int = 4,
    target_sparsity: float = 0.75,
    image_size: int = 8,
    verbose=1,
):
    """Trains the example CNN, prunes it to `target_sparsity` while fine-tuning, quantizes to int8.

    Returns:
        The CompressionResult.
    """
    (x_train, y_train), (x_test, y_test) = ks.data.load_digits(image_size=image_size)
    model = ks.data.train_example_model(epochs=epochs, image_size=image_size)

    recipe = ks.Recipe(
        prune=ks.Prune(target_sparsity=target_sparsity, skip=["logits"]),  # keep the classifier
        quantization="int8",
    )
    result = ks.compress(
        model,
        recipe,
        train_data=(x_train, y_train),  # fine-tuning data (distilled from the original)
        validation_data=(x_test, y_test),
        epochs=finetune_epochs,
        verbose=verbose,
    )
    result.save(output_dir, formats=("tflite", "onnx"))
    print(result.report.table())
    for row in result.report.layers:
        if "sparsity" in row.targets:
            print(f"{row.name:12s} zeros {row.sparsity:.1%} (target {row.targets['sparsity']:.0%})")
    return result


if __name__ == "__main__":
    main()
