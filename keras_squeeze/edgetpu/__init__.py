"""Edge TPU readiness of a .tflite, and edgetpu_compiler when it is installed.

    report = ks.edgetpu.check_edgetpu("model_int8.tflite")   # or bytes
    print(report.summary()); print(report.table())
    report.first_cpu_op            # where the compiler cuts to the CPU, or None
    ks.edgetpu.edgetpu_readiness(tflite_bytes)                # dict for report.json

    path, log = ks.edgetpu.compile_for_edgetpu(tflite_bytes, "out/model_edgetpu.tflite")
    # (None, None) when edgetpu_compiler is not on PATH

    fixed = ks.edgetpu.with_batch_size(model, 1)               # before converting

Importing this package loads neither TensorFlow nor Keras.
"""

from keras_squeeze.edgetpu.batch import with_batch_size
from keras_squeeze.edgetpu.compiler import (
    CompileResult,
    compile_for_edgetpu,
    compiler_command,
    find_compiler,
    run_compiler,
)
from keras_squeeze.edgetpu.compiler_log import CompilerLog, OperatorStatus, parse_compiler_log
from keras_squeeze.edgetpu.readiness import (
    EdgeTPUReport,
    OpCheck,
    check_edgetpu,
    edgetpu_readiness,
)

__all__ = [
    "CompileResult",
    "CompilerLog",
    "EdgeTPUReport",
    "OpCheck",
    "OperatorStatus",
    "check_edgetpu",
    "compile_for_edgetpu",
    "compiler_command",
    "edgetpu_readiness",
    "find_compiler",
    "parse_compiler_log",
    "run_compiler",
    "with_batch_size",
]
