"""Per-layer sensitivity: how much each layer can take, measured on the user's data.

    table = ks.sensitivity(model, (x_val, y_val))
    print(table.table())
    table.save("sensitivity/")

See `measure.sensitivity` (what is measured), `table.Sensitivity` (the object
and its JSON) and `probes` (the probes, and how an error probe such as int4
weights registers).
"""

from keras_squeeze.layer_sensitivity.measure import sensitivity
from keras_squeeze.layer_sensitivity.probes import (
    ErrorProbe,
    ProbeContext,
    ProbeResult,
    WeightProbe,
    error_probes,
    register_error_probe,
    unregister_error_probe,
)
from keras_squeeze.layer_sensitivity.table import LayerSensitivity, Sensitivity

__all__ = [
    "ErrorProbe",
    "LayerSensitivity",
    "ProbeContext",
    "ProbeResult",
    "Sensitivity",
    "WeightProbe",
    "error_probes",
    "register_error_probe",
    "sensitivity",
    "unregister_error_probe",
]
