"""Pruning settings: a small validated stage object for ks.Recipe."""

from __future__ import annotations

import dataclasses

from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import check_engine, check_selection
from keras_squeeze.pruning.schedule import POLYNOMIAL, SCHEDULES

DEFAULT_TARGET_SPARSITY = 0.8
# Layers whose kernel has fewer weights stay dense: little to gain, much to lose.
DEFAULT_MIN_WEIGHTS = 1024


@dataclasses.dataclass(frozen=True)
class Prune:
    """Magnitude pruning settings (tfmot's prune_low_magnitude, or the native engine).

    Args:
        target_sparsity: fraction of each pruned kernel set to zero, in [0, 1)
            (default 0.8). Ignored with `m_by_n`.
        m_by_n: (M, N) structured sparsity: M zeros in every N consecutive
            input-channel weights (e.g. (2, 4)); M < N.
        block_size: (rows, cols) blocks of a Dense kernel (Keras layout: inputs,
            units) pruned together (default (1, 1): unstructured). (4, 1)
            zeroes 4 consecutive inputs of a unit at once, which TFLite stores
            contiguously, so the zeros cost fewer bits after gzip. The engines
            prune blocks in rank-2 kernels that hold two or more blocks along
            each axis (`pruning.masks.block_for`); other layers prune per
            weight (the report notes each such rank-2 kernel).
        schedule: "polynomial" (sparsity ramps from 0; default) or "constant".
        begin_step / end_step / frequency: mask-update steps; derived from the
            fine-tune's length when None (see pruning.schedule.derive).
        layers: per-layer targets: {key: sparsity or None (keep dense)}, where
            a key is a layer name, a layer class name, or a regular expression
            matched against names. A key that matches no layer is an error.
        skip: layer names, class names or regular expressions to keep dense.
        keep_first_layer: keep the first convolution / dense layer after the
            input dense (default True): it sees raw pixels and has few weights.
        min_weights: kernels with fewer weights stay dense (default 1024).
        xnnpack_sparse: prune only what XNNPACK's sparse inference can run
            (1x1 convolutions in a supported subgraph, tfmot's latency policy)
            and encode the .tflite's weights as sparse.
        sparse_encoding: store pruned float32 weights in the .tflite's sparse
            format: True, False, or "auto" (with float32 quantization only:
            the file shrinks and XNNPACK can run sparse 1x1 convolutions from
            it). Quantized weights are always stored dense: sparse int8
            weights gzip worse than dense ones (benchmarks/RESULTS.md,
            pruning) and XNNPACK fails to prepare FULLY_CONNECTED / CONV_2D
            nodes that read them.
        learning_rate_scale: the stage fine-tunes at this multiple of the
            run's learning rate (default 1.0: the network must recover from
            the removed weights).
        engine: "auto" (default: the native engine for a subclassed model,
            tfmot otherwise), "native" (masks as variables, applied after
            every optimizer step; no wrappers, the model's own call() runs)
            or "tfmot". The same plan, schedule and report either way.

    Example:
        >>> ks.Recipe(prune=ks.Prune(target_sparsity=0.5, skip=("logits",)))
    """

    target_sparsity: float = DEFAULT_TARGET_SPARSITY
    m_by_n: tuple[int, int] | None = None
    block_size: tuple[int, int] = (1, 1)
    schedule: str = POLYNOMIAL
    begin_step: int | None = None
    end_step: int | None = None
    frequency: int | None = None
    layers: dict = dataclasses.field(default_factory=dict)
    skip: tuple[str, ...] = ()
    keep_first_layer: bool = True
    min_weights: int = DEFAULT_MIN_WEIGHTS
    xnnpack_sparse: bool = False
    sparse_encoding: bool | str = "auto"
    learning_rate_scale: float = 1.0
    engine: str = "auto"

    def __post_init__(self):
        t = self.target_sparsity
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t < 1.0:
            raise RecipeError(
                "The target sparsity must be a fraction of weights to zero. Expected a value in "
                f"[0, 1). Received: target_sparsity={t!r}"
            )
        if self.m_by_n is not None:
            mn = tuple(self.m_by_n)
            if len(mn) != 2 or not all(isinstance(v, int) and v > 0 for v in mn) or mn[0] >= mn[1]:
                raise RecipeError(
                    "M:N sparsity needs M zeros out of N consecutive weights with 0 < M < N. "
                    f"Expected e.g. (2, 4). Received: m_by_n={self.m_by_n!r}"
                )
            object.__setattr__(self, "m_by_n", mn)
        block = tuple(self.block_size)
        if len(block) != 2 or not all(isinstance(v, int) and v >= 1 for v in block):
            raise RecipeError(
                "block_size must be two positive integers (rows, cols). Expected e.g. (4, 1). "
                f"Received: block_size={self.block_size!r}"
            )
        if block != (1, 1) and self.m_by_n is not None:
            raise RecipeError(
                "block_size and m_by_n are two different sparsity patterns. Expected one of them. "
                f"Received: block_size={block}, m_by_n={self.m_by_n}"
            )
        object.__setattr__(self, "block_size", block)
        if self.schedule not in SCHEDULES:
            raise RecipeError(
                f"Unknown pruning schedule. Expected one of {list(SCHEDULES)}. "
                f"Received: schedule={self.schedule!r}"
            )
        for name in ("begin_step", "end_step", "frequency"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise RecipeError(f"{name} must be an integer step. Received: {name}={value!r}")
        check_selection(
            self,
            maps_to="a sparsity (or None)",
            valid=lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1,
            value_rule="A per-layer sparsity must lie in [0, 1) or be None (keep dense)",
        )
        check_engine(self.engine)
        if self.sparse_encoding not in (True, False, "auto"):
            raise RecipeError(
                "sparse_encoding must be True, False or 'auto'. "
                f"Received: sparse_encoding={self.sparse_encoding!r}"
            )

    @property
    def effective_sparsity(self) -> float:
        """The sparsity every pruned kernel ends with (M/N for M:N)."""
        return self.m_by_n[0] / self.m_by_n[1] if self.m_by_n else self.target_sparsity

    def uses_sparse_encoding(self, quantization: str) -> bool:
        """Whether to store the pruned weights sparse, given the recipe's quantization."""
        if self.sparse_encoding == "auto":
            return quantization == "float32"
        return bool(self.sparse_encoding)

    def get_config(self) -> dict:
        config = dataclasses.asdict(self)
        config["m_by_n"] = list(self.m_by_n) if self.m_by_n else None
        config["block_size"] = list(self.block_size)
        config["skip"] = list(self.skip)
        return config

    @classmethod
    def from_config(cls, config: dict) -> Prune:
        config = dict(config)
        if config.get("m_by_n") is not None:
            config["m_by_n"] = tuple(config["m_by_n"])
        if "block_size" in config:
            config["block_size"] = tuple(config["block_size"])
        config["skip"] = tuple(config.get("skip", ()))
        return cls(**config)
