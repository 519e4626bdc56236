"""The ground floor: helpers every other package uses.

`models` (loading and inspecting Keras models of either flavour, running
them), `graph` (the one walk over a Keras functional graph), `atomic`
(writes that leave no partial file), `progress` (the one progress
printer) and `native_output` (catching what native code prints on
descriptors 1 and 2). Nothing here imports from another keras_squeeze package except
`errors`, `_compat` and `data.inputs`.
"""
