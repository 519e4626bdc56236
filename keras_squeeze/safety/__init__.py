"""Reading files from other people: native readers in a child process, model files
checked for executable code, output names kept inside their directory.

- `probe.run_in_child`: runs a reader in a fresh Python process with a time and
  memory bound, so a file that crashes or hangs native code (the LiteRT
  interpreter, HDF5) becomes a `ModelError` instead of killing the caller.
  `probe.probe_tflite` and `probe.probe_hdf5` are the two probes built on it.
- `model_files.check_model_file`: refuses a .keras, .h5 or SavedModel whose
  configuration carries Python code (a Lambda layer's bytecode, a function
  from outside Keras) before anything is deserialized.
- `paths.contained`: the path of a name inside an output directory, refusing
  names that would land outside it.

Importing this package loads neither TensorFlow nor Keras.
"""
