"""Latency harness: .tflite models on this CPU, on Android devices over adb, and on the Edge TPU.

    result = ks.bench.benchmark({"float": "model.tflite", "int8": int8_result},
                                baseline="float", num_threads=2)
    print(result.table())
    result.save_json("latency.json"); result.chart("latency.png")

    devices = ks.bench.list_devices()                 # adb devices -l
    result = ks.bench.benchmark_android("model.tflite", serial=devices[0].serial,
                                        binary="benchmark_model", use_gpu=True)

Importing this package loads neither TensorFlow nor ai_edge_litert.
"""

from keras_squeeze.bench.adb import AndroidDevice, list_devices
from keras_squeeze.bench.android import benchmark_android
from keras_squeeze.bench.compare import compare_latency
from keras_squeeze.bench.local import benchmark
from keras_squeeze.bench.results import BenchmarkResult, MemoryFootprint, ModelResult, OpTiming
from keras_squeeze.bench.settings import RunSettings
from keras_squeeze.bench.stats import LatencyStats

__all__ = [
    "AndroidDevice",
    "BenchmarkResult",
    "LatencyStats",
    "MemoryFootprint",
    "ModelResult",
    "OpTiming",
    "RunSettings",
    "benchmark",
    "benchmark_android",
    "compare_latency",
    "list_devices",
]
