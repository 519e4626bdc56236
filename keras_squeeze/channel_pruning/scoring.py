"""Reads a model's weights (or runs it on data) to score each group's channels.

The maths lives in `importance`; this module finds the sources of each group
(kernels, BatchNormalization scales, or tensors for "taylor") and maps their
channels onto the group's components.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.channel_pruning import importance
from keras_squeeze.channel_pruning.dependency import Analysis, Group
from keras_squeeze.data.inputs import Samples
from keras_squeeze.data.labels import output_specs
from keras_squeeze.errors import DataError
from keras_squeeze.training import tasks

TAYLOR_BATCH = 32


def _scatter(analysis: Analysis, label, scores, sources: dict[int, list[np.ndarray]]) -> None:
    """Adds one source (a score per position of `label`) to every prunable group it covers."""
    groups = analysis.element_group[label]
    comps = analysis.element_component[label]
    for gid in np.unique(groups).tolist():
        group = analysis.groups[gid]
        if not group.prunable:
            continue
        at = groups == gid
        sources.setdefault(gid, []).append(
            importance.source_scores(comps[at], np.asarray(scores)[at], group.size)
        )


def _norm_sources(analysis: Analysis, ord_: int) -> dict[int, list[np.ndarray]]:
    sources: dict[int, list[np.ndarray]] = {}
    for info in analysis.nodes:
        if info.reason or info.rule is None or info.rule.norms is None:
            continue
        norms = info.rule.norms(info.node.layer.get_weights(), ord_)
        label = info.outputs[0] if info.rule.role == "producer" else info.inputs[0]
        _scatter(analysis, label, norms, sources)
    return sources


def _bn_sources(analysis: Analysis) -> dict[int, list[np.ndarray]]:
    sources: dict[int, list[np.ndarray]] = {}
    for info in analysis.nodes:
        layer = info.node.layer
        if info.reason or info.node.kind != "BatchNormalization":
            continue
        if not layer.get_config().get("scale", True):
            continue
        gamma = np.abs(layer.get_weights()[0]).astype(np.float64)
        _scatter(analysis, info.inputs[0], gamma, sources)
    return sources


def _taylor_sites(analysis: Analysis) -> list:
    """Producer and member outputs: every tensor where a group's channels live on their own."""
    return [
        info
        for info in analysis.nodes
        if info.reason is None
        and info.rule is not None
        and info.rule.role in ("producer", "member")
        and info.outputs
        and info.outputs[0] is not None
    ]


def _taylor_sources(analysis, model, samples: Samples, loss) -> dict[int, list[np.ndarray]]:
    import tensorflow as tf

    sites = _taylor_sites(analysis)
    k = _compat.keras_module(_compat.keras_flavour(model))
    tensors = [analysis.view.tensors[info.node.outputs[0]] for info in sites]
    outputs = list(model.outputs)
    inputs = list(model.inputs)
    probe = k.Model(inputs[0] if len(inputs) == 1 else inputs, tensors + outputs)
    sums = [np.zeros(len(info.outputs[0])) for info in sites]
    for start in range(0, samples.count, TAYLOR_BATCH):
        batch = samples.batch(start, start + TAYLOR_BATCH)
        x = batch if len(batch) > 1 else batch[0]
        labels = samples.labels
        if isinstance(labels, list):  # one array per output
            y = [a[start : start + TAYLOR_BATCH] for a in labels]
        else:
            y = labels[start : start + TAYLOR_BATCH]
        with tf.GradientTape() as tape:
            result = probe(x, training=False)
            acts, preds = result[: len(tensors)], result[len(tensors) :]
            if isinstance(loss, list):  # one loss per output, summed
                value = tf.add_n(
                    [
                        tf.reduce_mean(fn(t, p))
                        for fn, t, p in zip(
                            loss, y if isinstance(y, list) else [y], preds, strict=True
                        )
                        if fn is not None
                    ]
                )
            else:
                value = loss(y, preds[0] if len(preds) == 1 else preds)
        grads = tape.gradient(value, acts)
        for i, (a, g) in enumerate(zip(acts, grads, strict=True)):
            if g is not None:
                sums[i] += importance.taylor_sums(np.asarray(a), np.asarray(g))
    sources: dict[int, list[np.ndarray]] = {}
    for info, total in zip(sites, sums, strict=True):
        _scatter(analysis, info.outputs[0], total / samples.count, sources)
    return sources


def resolve_loss(loss, model, argument: str = "loss"):
    """A callable loss(y_true, y_pred) from an identifier, a callable or the model's compile."""
    k = _compat.keras_module(_compat.keras_flavour(model))
    if loss is None:
        loss = getattr(model, "loss", None)
    if loss is None:
        return None
    if isinstance(loss, Mapping) or (isinstance(loss, Sequence) and not isinstance(loss, str)):
        # One loss per output (a list in output order, or a dict keyed by output name).
        names = [spec.name for spec in output_specs(model)]
        entries = tasks.per_output(loss, names, argument)
        return [None if e is None else resolve_loss(e, model, argument) for e in entries]
    if isinstance(loss, (str, dict)):
        try:
            return k.losses.get(loss)
        except (ValueError, TypeError) as e:
            raise DataError(
                f"Unknown {argument}. Expected a Keras loss name, object or callable "
                f"(y_true, y_pred). Received: {argument}={loss!r}"
            ) from e
    if callable(loss):
        return loss
    raise DataError(
        f"{argument} is not a loss. Expected a Keras loss name, object or callable "
        f"(y_true, y_pred). Received: {type(loss).__name__}"
    )


def group_scores(
    analysis: Analysis,
    groups: list[Group],
    criterion: str,
    model=None,
    samples: Samples | None = None,
    loss=None,
) -> tuple[dict[int, np.ndarray], list[str]]:
    """Importance per component of each prunable group, and notes on fallbacks.

    Args:
        analysis: the dependency analysis of `model`.
        groups: the prunable groups to score.
        criterion: "l1", "l2", "bn_scale" or "taylor".
        model: the model (for "taylor").
        samples: labelled samples (for "taylor").
        loss: a callable loss(y_true, y_pred) (for "taylor").

    Returns:
        ({group id: scores}, notes).
    """
    notes: list[str] = []
    l1 = None
    if criterion in ("l1", "l2"):
        sources = _norm_sources(analysis, 1 if criterion == "l1" else 2)
    elif criterion == "bn_scale":
        sources = _bn_sources(analysis)
    else:
        sources = _taylor_sources(analysis, model, samples, loss)
    scores = {}
    fallback = []
    for g in groups:
        group_sources = sources.get(g.id)
        if not group_sources:
            l1 = _norm_sources(analysis, 1) if l1 is None else l1
            group_sources = l1.get(g.id, [])
            fallback.append(g.label)
        scores[g.id] = importance.group_scores(group_sources, g.size)
    if fallback:
        notes.append(
            f"criterion '{criterion}' has no source in {len(fallback)} group(s) "
            f"({', '.join(fallback[:5])}{', ...' if len(fallback) > 5 else ''}); "
            "they were scored by 'l1'"
        )
    return scores, notes
