"""What a bridge crossing did, and how closely the rebuilt model agrees."""

from __future__ import annotations

import dataclasses

from keras_squeeze.keras_bridge.agreement import Agreement

KERAS3_TO_TF_KERAS = "keras3->tf_keras"
TF_KERAS_TO_KERAS3 = "tf_keras->keras3"


@dataclasses.dataclass
class BridgeReport:
    """The record of one rebuild between Keras 3 and tf_keras.

    Attributes:
        direction: "keras3->tf_keras" or "tf_keras->keras3".
        model: the model's name (kept by the rebuild).
        layers: keras3->tf_keras: number of layers rebuilt (each shared layer
            once); tf_keras->keras3: number of layers whose weights were set.
        op_layers: Keras 3 ops rebuilt as TensorFlow op layers, e.g.
            {"add": "numpy.Add"}.
        flattened: nested models whose layers were inlined, e.g.
            ["mobilenetv2_0.35_32"].
        weights: number of weight arrays copied.
        params: number of weight scalars.
        agreement: outputs of the rebuilt model against the source model.
        samples: what the outputs were compared on.
        seconds: wall time of the rebuild, weight copy and check.
        notes: anything the rebuild changed that is not a weight (e.g. an
            initializer without a tf_keras twin).
    """

    direction: str
    model: str
    layers: int
    op_layers: dict[str, str]
    flattened: list[str]
    weights: int
    params: int
    agreement: Agreement
    samples: str
    seconds: float
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["agreement"] = {**dataclasses.asdict(self.agreement), "ok": self.agreement.ok}
        return out

    def summary(self) -> str:
        parts = [
            f"{self.direction}: '{self.model}', {self.layers} layers",
            f"{len(self.op_layers)} op layers" if self.op_layers else None,
            f"{len(self.flattened)} nested models inlined" if self.flattened else None,
            f"{self.weights} weights ({self.params:,} params) copied",
            f"{self.agreement.summary()} on {self.samples}",
            f"{self.seconds:.2f} s",
        ]
        return ", ".join(p for p in parts if p)
