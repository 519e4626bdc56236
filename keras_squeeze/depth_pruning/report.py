"""The block removal report: each unit with its importance and fate; depth and cost before
and after."""

from __future__ import annotations

import dataclasses
import json

from keras_squeeze.channel_pruning.graph import GraphView
from keras_squeeze.depth_pruning.units import FOLLOWERS


@dataclasses.dataclass
class UnitRow:
    """One candidate unit.

    Attributes:
        name, kind: the unit ("conv2_block2", "residual" / "chain" / "identity").
        layers: the layers it holds.
        removable: whether it could be removed.
        removed: whether it was.
        importance: its importance bypassed alone (None where not measured:
            not removable, skipped, or an identity at inference, which is 0).
        importance_at_removal: when removed, its importance at that step (with
            the units removed before it bypassed).
        step: its position in the removal order (1 = first), None if kept.
        macs / params: what it costs (MACs at the model's input size, batch 1).
        latency_ms: its measured saving (metric "latency").
        reason: why it cannot be removed, or why it was kept.
        note: anything else (e.g. a kernel close to the identity).
    """

    name: str
    kind: str
    layers: list[str]
    removable: bool
    removed: bool
    importance: float | None = None
    importance_at_removal: float | None = None
    step: int | None = None
    macs: int | None = None
    params: int | None = None
    latency_ms: float | None = None
    reason: str | None = None
    note: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        if self.removed:
            what = "an identity at inference" if self.kind == "identity" else None
            imp = f"importance {self.importance:.4g}" if self.importance is not None else what or ""
            return f"removed {self.kind} '{self.name}' ({imp}{self._cost()})"
        if not self.removable:
            return f"{self.kind} '{self.name}' cannot be removed: {self.reason}"
        imp = "" if self.importance is None else f" (importance {self.importance:.4g})"
        return f"kept {self.kind} '{self.name}'{imp}: {self.reason}"

    def _cost(self) -> str:
        parts = []
        if self.macs:
            parts.append(f"{self.macs:,} MACs")
        if self.params:
            parts.append(f"{self.params:,} params")
        if self.latency_ms is not None:
            parts.append(f"{self.latency_ms:.3f} ms")
        return (", " + ", ".join(parts)) if parts else ""


@dataclasses.dataclass
class BlockRemovalReport:
    """What block removal did.

    Attributes:
        settings: the BlockRemoval config used.
        keras_flavour: "keras3" or "tf_keras".
        depth_before / depth_after: the longest input-to-output path counted in
            weighted layers (Conv, Dense, ...; normalization layers not counted):
            50 for ResNet50.
        layers_before / layers_after: calls in the graph (inputs excluded).
        macs_before / macs_after: multiply-accumulates at the model's input size,
            batch 1 (None without static shapes; see `count_flops`).
        params_before / params_after: all weight scalars.
        latency: the float .tflite of the original and of the result measured
            interleaved (`ks.bench.compare_latency`, 1 thread, XNNPACK), when
            measured.
        units: every candidate, in graph order.
        merged: BatchNormalization layers folded and linear layers merged, each
            {"kind": "bn" | "linear", "removed": layer name, "into": layer name}.
        accuracy: {"original", "removed", "fine_tuned", "samples"} on labelled
            validation data, when given.
        fine_tuning: what fine-tuning ran, if any.
        notes / warnings: what the user should know.
    """

    settings: dict
    keras_flavour: str
    depth_before: int
    depth_after: int
    layers_before: int
    layers_after: int
    macs_before: int | None
    macs_after: int | None
    params_before: int
    params_after: int
    units: list[UnitRow]
    merged: list[dict] = dataclasses.field(default_factory=list)
    latency: dict | None = None
    accuracy: dict | None = None
    fine_tuning: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def merge_notes(self) -> list[str]:
        verbs = {"bn": "folded", "linear": "merged"}
        return [f"'{m['removed']}' {verbs[m['kind']]} into '{m['into']}'" for m in self.merged]

    @property
    def removed(self) -> list[UnitRow]:
        """The removed units: identities at inference first, then in the order chosen."""
        return sorted((u for u in self.units if u.removed), key=lambda u: u.step or 0)

    @property
    def flops_ratio(self) -> float | None:
        """MACs after / before; None without static shapes."""
        if self.macs_before is None or self.macs_after is None:
            return None
        return self.macs_after / self.macs_before if self.macs_before else 1.0

    @property
    def params_ratio(self) -> float:
        return self.params_after / self.params_before if self.params_before else 1.0

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["flops_ratio"] = None if self.flops_ratio is None else round(self.flops_ratio, 4)
        out["params_ratio"] = round(self.params_ratio, 4)
        out["removed"] = [u.name for u in self.removed]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def summary(self) -> str:
        blocks = [u for u in self.units if u.removable and u.kind != "identity"]
        gone = [u for u in blocks if u.removed]
        line = (
            f"removed {len(gone)} of {len(blocks)} removable blocks/layers, depth "
            f"{self.depth_before} -> {self.depth_after}"
        )
        if self.flops_ratio is not None:
            line += f", MACs {self.macs_before:,} -> {self.macs_after:,} ({self.flops_ratio:.3f}x)"
        line += (
            f", params {self.params_before:,} -> {self.params_after:,} ({self.params_ratio:.3f}x)"
        )
        if self.latency:
            lat = self.latency
            line += (
                f", float .tflite p50 {lat['original_p50_ms']:.3f} -> "
                f"{lat['compressed_p50_ms']:.3f} ms ({lat['speedup']:.2f}x faster)"
            )
        if self.accuracy:
            acc = self.accuracy
            line += f"; accuracy {acc['original']:.4f} -> removed {acc['removed']:.4f}"
            if acc.get("fine_tuned") is not None:
                line += f" -> fine-tuned {acc['fine_tuned']:.4f}"
        return line

    def to_markdown(self) -> str:
        lines = [
            "# Block removal",
            "",
            f"- Keras flavour: {self.keras_flavour}",
            f"- {self.summary()}",
        ]
        if self.fine_tuning:
            lines.append(f"- Fine-tuning: {self.fine_tuning}")
        lines += [
            "",
            "| unit | kind | removed | importance | MACs | params | reason / note |",
            "|---|---|---|---:|---:|---:|---|",
        ]
        for u in self.units:
            imp = "" if u.importance is None else f"{u.importance:.4g}"
            fate = "no" if not u.removed else (f"yes (step {u.step})" if u.step else "yes")
            text = "; ".join(t for t in (u.reason, u.note) if t)
            macs = "" if u.macs is None else f"{u.macs:,}"
            params = "" if u.params is None else f"{u.params:,}"
            lines.append(f"| {u.name} | {u.kind} | {fate} | {imp} | {macs} | {params} | {text} |")
        if self.merged or self.notes or self.warnings:
            lines += ["", "## Notes", ""]
            lines += [f"- {m}" for m in self.merge_notes()]
            lines += [f"- {n}" for n in self.notes]
            lines += [f"- **Warning:** {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"


def _weighted(node) -> bool:
    layer = node.layer
    if not hasattr(layer, "get_weights") or node.kind in FOLLOWERS:
        return False
    return bool(getattr(layer, "weights", None))


def depth(view: GraphView) -> int:
    """The longest input-to-output path, counted in weighted layers (normalization not
    counted, a nested model as one)."""
    at: dict[int, int] = {}
    for node in view.nodes:
        level = max((at.get(k, 0) for k in node.inputs), default=0) + int(_weighted(node))
        for k in node.outputs:
            at[k] = level
    return max((at.get(k, 0) for k in view.outputs), default=0)


def call_count(view: GraphView) -> int:
    return sum(1 for n in view.nodes if not n.is_input)
