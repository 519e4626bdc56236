"""The channel pruning report: channels per layer, MACs and parameters, accuracy."""

from __future__ import annotations

import dataclasses
import json

from keras_squeeze.channel_pruning.dependency import Analysis
from keras_squeeze.channel_pruning.graph import GraphView


@dataclasses.dataclass
class ChannelRow:
    """One layer: its output channels before and after, and why it was left whole.

    Attributes:
        name, type: the layer's name and class name.
        channels_before / channels_after: size of its output's channel (last)
            axis, None for layers without one.
        group: the producers whose channels this layer's output carries.
        reason: why its channels were left whole (the layer is not analysable,
            or its group is coupled to something that is), None otherwise.
    """

    name: str
    type: str
    channels_before: int | None
    channels_after: int | None
    group: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ChannelPruningReport:
    """What channel pruning did.

    Attributes:
        settings: the ChannelPruning config used.
        keras_flavour: "keras3" or "tf_keras".
        macs_before / macs_after: multiply-accumulates at the model's input
            size, batch 1 (see `count_flops` for what is counted; FLOPs = 2 x MACs).
        params_before / params_after: all weight scalars.
        target_ratio: the fraction of the metric aimed for (None per-layer).
        groups_pruned / groups_total: channel groups that could be pruned / all.
        layers: one row per layer.
        accuracy: {"original", "pruned", "fine_tuned", "samples"} top-1 accuracy
            on labelled validation data, when given ("fine_tuned" when a fine-tuning
            step ran).
        fine_tuning: what fine-tuning ran, if any.
        notes / warnings: what the user should know.
    """

    settings: dict
    keras_flavour: str
    macs_before: int | None
    macs_after: int | None
    params_before: int
    params_after: int
    target_ratio: float | None
    groups_pruned: int
    groups_total: int
    layers: list[ChannelRow]
    accuracy: dict | None = None
    fine_tuning: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def flops_ratio(self) -> float | None:
        """MACs after / before (the same ratio as FLOPs); None without static shapes."""
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
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def summary(self) -> str:
        macs = "MACs unknown (no static input size)"
        if self.flops_ratio is not None:
            macs = f"MACs {self.macs_before:,} -> {self.macs_after:,} ({self.flops_ratio:.3f}x)"
        line = (
            f"{macs}, params {self.params_before:,} -> {self.params_after:,} "
            f"({self.params_ratio:.3f}x), "
            f"{self.groups_pruned} of {self.groups_total} channel groups pruned"
        )
        if self.accuracy:
            acc = self.accuracy
            line += f"; accuracy {acc['original']:.4f} -> pruned {acc['pruned']:.4f}"
            if acc.get("fine_tuned") is not None:
                line += f" -> fine-tuned {acc['fine_tuned']:.4f}"
        return line

    def to_markdown(self) -> str:
        lines = [
            "# Channel pruning",
            "",
            f"- Keras flavour: {self.keras_flavour}",
            f"- {self.summary()}",
        ]
        if self.fine_tuning:
            lines.append(f"- Fine-tuning: {self.fine_tuning}")
        lines += [
            "",
            "| layer | type | channels before | channels after | note |",
            "|---|---|---:|---:|---|",
        ]
        for r in self.layers:
            before = "" if r.channels_before is None else str(r.channels_before)
            after = "" if r.channels_after is None else str(r.channels_after)
            lines.append(f"| {r.name} | {r.type} | {before} | {after} | {r.reason or ''} |")
        if self.notes or self.warnings:
            lines += ["", "## Notes", ""]
            lines += [f"- {n}" for n in self.notes]
            lines += [f"- **Warning:** {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"


def _out_channels(view: GraphView) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for node in view.nodes:
        if node.name in out or not node.outputs:
            continue
        shape = view.shapes[node.outputs[0]]
        out[node.name] = shape[-1] if len(shape) >= 2 else None
    return out


def channel_rows(analysis: Analysis, pruned_view: GraphView) -> list[ChannelRow]:
    """One row per layer of the original model (inputs excluded), in graph order."""
    after = _out_channels(pruned_view)
    rows = []
    seen: set[str] = set()
    for info in analysis.nodes:
        node = info.node
        if node.is_input or node.name in seen:
            continue
        seen.add(node.name)
        label = info.outputs[0] if info.outputs else None
        before = len(label) if label is not None else None
        group_text, reason = None, analysis.layer_reasons.get(node.name)
        if label is not None and len(label):
            gids = sorted(set(analysis.element_group[label].tolist()))
            groups = [analysis.groups[g] for g in gids]
            group_text = "; ".join(g.label for g in groups)
            frozen = [r for g in groups for r in g.reasons]
            role = info.rule.role if info.rule is not None else None
            if reason is None and frozen and role in ("producer", "member"):
                reason = "left whole: " + "; ".join(dict.fromkeys(frozen))
        row = ChannelRow(node.name, node.kind, before, after.get(node.name), group_text, reason)
        rows.append(row)
    return rows
