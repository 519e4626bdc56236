"""The int4 error probe: what storing one layer's weights in int4 does to the outputs.

For each layer with a weight op ai-edge-quantizer stores in int4 (as the
"int4-weights" preset stores it: blocks of 32 along the input, else per output
channel; `quantization.int4`), the float32 .tflite is quantized with only that
layer's weights in int4 and run on the debug samples in ai_edge_litert:

- sqnr_db: SQNR of the model's outputs (the lowest over the outputs) against
  the float32 .tflite's on the same samples.

Unlike the int8 column (the error each op's own quantization adds) this is the
effect on the outputs of that one layer's int4 weights, activations staying
float. Layers without such a weight op are left empty.
"""

from __future__ import annotations

from keras_squeeze.core.progress import say
from keras_squeeze.layer_sensitivity.probes import (
    ErrorProbe,
    ProbeContext,
    ProbeResult,
    register_error_probe,
)


def measure(ctx: ProbeContext) -> ProbeResult:
    from keras_squeeze.quantization import int4

    say(ctx.verbose, "sensitivity: int4 weights, one layer at a time")
    errors = int4.layer_errors(ctx.model, ctx.debug)
    layers = {
        name: {"sqnr_db": sqnr, "rmse": None} for name, sqnr in errors.items() if name in ctx.layers
    }
    notes = [
        "int4: SQNR of the outputs with only that layer's weights in int4 (blocks of "
        f"{int4.BLOCK_SIZE}, else per channel; activations float) against the float32 .tflite, "
        f"on {ctx.debug.count} samples; layers without a weight op ai-edge-quantizer stores in "
        "int4 are empty"
    ]
    return ProbeResult(layers, notes)


register_error_probe(ErrorProbe("int4", "int4 weights", measure))
