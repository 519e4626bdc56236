"""compress(model, "auto"): the smallest (or fastest) verified .tflite within an accuracy budget.

The search calls compress() once per candidate, cheapest first, and keeps the
smallest (gzip bytes; objective="size") result whose metric on the labelled
validation data, measured on its .tflite, lost at most `max_accuracy_drop`;
with objective="latency", the fastest on this CPU (`keras_squeeze.api.auto_latency`:
every tried .tflite timed interleaved by the package's harness, median and
spread, the noise caveat):

1. post-training: "int8", "int8-mixed", "int4-weights", "dynamic", "float16";
2. with `train_data`, training candidates whose per-layer settings come from
   `ks.sensitivity` on the validation data: each layer is pruned to the
   highest of 90% / 70% / 50% (clustered to the fewest of 8 / 16 values)
   whose drop, that layer alone and without fine-tuning, stays within
   `LAYER_SHARE` of the budget; then fine-tuned with the usual loop and
   quantized to int8: "auto-prune", "auto-cluster", "auto-prune-cluster".
   Their distillation setting is chosen, not assumed (`DistillChoice`): the
   first one runs distilled from the original and on labels only, and the
   setting that lost less on the validation data fine-tunes the others.

With objective="size", a candidate that cannot beat the best found so far on
size is skipped, with the reason (`_cannot_beat`); with objective="latency"
none is skipped for speed (no bound on latency is sound before timing). The
search stops starting candidates once `time_budget_s` has passed and returns
the best so far, saying so. Every candidate, tried or not, is a row of
`report.search` (rendered in report.md, report.html and the terminal), with
the Pareto front of gzip bytes (latency, for objective="latency") against
the metric drop marked.
An "int8-mixed" candidate that kept every op float32 is labelled float32 there.
"""

from __future__ import annotations

import math
import time
import warnings

from keras_squeeze.api import auto_latency, checks, reporting
from keras_squeeze.api.recipe import Recipe
from keras_squeeze.clustering.config import Cluster
from keras_squeeze.core.progress import say
from keras_squeeze.errors import (
    DataError,
    ExportError,
    RecipeError,
    VerificationError,
)
from keras_squeeze.pruning.config import Prune
from keras_squeeze.report.search import SEARCH_STOPPED, search_text
from keras_squeeze.report.search import points as _points

AUTO = "auto"
DEFAULT_MAX_ACCURACY_DROP = 0.01
OBJECTIVES = ("size", "latency")
POST_TRAINING = ("int8", "int8-mixed", "int4-weights", "dynamic", "float16")
PRUNE_RATES = (0.9, 0.7, 0.5)
CLUSTER_COUNTS = (8, 16)
# A layer takes a setting when, alone and without fine-tuning, it costs at most this
# share of the budget: several layers changed at once add up, and fine-tuning recovers.
LAYER_SHARE = 0.25
TRAINING_NAMES = ("auto-prune", "auto-cluster", "auto-prune-cluster")
NOT_STARTED = "not started: time_budget_s had passed"
# float16 keeps every weight at 16 bits: its file is never smaller than an 8-bit one.
_WEIGHT_BITS = {"int8": 8, "int8-mixed": 8, "dynamic": 8, "float16": 16, "int4-weights": 4}
# Candidates that fail to convert or verify are rows of the table, not the end of the search.
_CANDIDATE_ERRORS = (ExportError, RecipeError, VerificationError)


def check_arguments(objective, time_budget_s, max_accuracy_drop, validation_data) -> float:
    """The search's own arguments; returns the budget (the default when None).

    Raises:
        RecipeError: an unknown objective, a time budget that is not a positive
            number, or max_accuracy_drop outside [0, 1).
        DataError: no validation_data.
    """
    if objective not in OBJECTIVES:
        raise RecipeError(
            "Unknown objective of the 'auto' search (what it minimises: gzip bytes, or the "
            "p50 latency of the .tflite on this CPU). Expected one of "
            f"{list(OBJECTIVES)}. Received: objective={objective!r}"
        )
    if time_budget_s is not None:
        ok = isinstance(time_budget_s, (int, float)) and not isinstance(time_budget_s, bool)
        if not ok or not math.isfinite(time_budget_s) or time_budget_s <= 0:
            raise RecipeError(
                "time_budget_s bounds how long the 'auto' search starts candidates. Expected a "
                f"positive number of seconds, or None. Received: time_budget_s={time_budget_s!r}"
            )
    if max_accuracy_drop is None:
        max_accuracy_drop = DEFAULT_MAX_ACCURACY_DROP
    if validation_data is None:
        raise DataError(
            "The 'auto' search keeps the smallest candidate whose metric on labelled validation "
            "data stays within max_accuracy_drop. Expected validation_data=(x, y). "
            "Received: validation_data=None"
        )
    return max_accuracy_drop


def _labelled(job, max_accuracy_drop) -> float:
    if job.validation is None or job.validation.labels is None:
        raise DataError(
            "The 'auto' search keeps the smallest candidate whose metric on labelled validation "
            "data stays within max_accuracy_drop. Expected validation_data=(x, y). "
            "Received: validation_data without labels"
        )
    return checks.check_accuracy_budget(max_accuracy_drop, job.validation)


def _row(name, recipe, kind) -> dict:
    return {
        "candidate": name,
        "recipe": recipe.get_config(),
        "kind": kind,
        "status": "not tried",
        "tflite_bytes": None,
        "gzip_bytes": None,
        "metric": None,
        "metric_name": None,
        "drop": None,
        "seconds": None,
        "within_budget": None,
        "pareto": False,
        "chosen": False,
        "note": "",
    }


def _cannot_beat(row: dict, best: dict | None) -> str | None:
    """Why a post-training candidate cannot beat the best so far on size, or None."""
    if best is None or row["kind"] != "post-training":
        return None
    name, best_mode = row["candidate"], best["recipe"]["quantization"]
    if name == "int8-mixed" and best_mode == "int8":
        return "int8 met the budget, and int8-mixed only keeps more ops float32: never smaller"
    bits, best_bits = _WEIGHT_BITS.get(name), _WEIGHT_BITS.get(best_mode)
    # Only a file whose every weight op is 8-bit bounds another's size this way: int8-mixed
    # and int4-weights leave some ops float32, and "dynamic" leaves tensors under 1,024
    # weights float32 (the converter's threshold), which float16 would halve.
    if bits is not None and best_mode == "int8" and bits >= 2 * best_bits:
        return (
            f"stores {bits}-bit weights; {best['candidate']} met the budget with "
            f"{best_bits}-bit weights"
        )
    return None


def _metric(report) -> tuple[str | None, float | None]:
    if report.accuracy:
        return "accuracy", report.accuracy["compressed"]
    if report.regression:
        return "relative MSE", report.regression["relative_mse"]["compressed"]
    return None, None


def _layer_settings(table, probes, budget: float) -> dict:
    """{layer name: setting} of the layers whose measured drop at a setting stays within
    LAYER_SHARE of the budget: the strongest such setting (probes in that order)."""
    settings = {}
    for row in table.layers:
        for value, key in probes:
            drop = row.drops.get(key)
            if drop is not None and reporting.within(drop, LAYER_SHARE * budget):
                settings[row.name] = value
                break
    return settings


def training_candidates(table, budget: float) -> list[tuple[str, Recipe | None, str]]:
    """(name, recipe or None, why not) of the training candidates the table supports."""
    prune = _layer_settings(table, [(r, f"prune_{r:g}") for r in PRUNE_RATES], budget)
    cluster = _layer_settings(table, [(c, f"cluster_{c}") for c in CLUSTER_COUNTS], budget)
    names = [row.name for row in table.layers]

    def skip(chosen):
        return tuple(n for n in names if n not in chosen)

    prune_cfg = Prune(layers=prune, skip=skip(prune)) if prune else None
    cluster_cfg = Cluster(init="linear", layers=cluster, skip=skip(cluster)) if cluster else None
    none = f"no layer stays within {LAYER_SHARE:g} of the budget alone"
    out = []
    for name, p, c, needed in (
        ("auto-prune", prune_cfg, None, (prune_cfg,)),
        ("auto-cluster", None, cluster_cfg, (cluster_cfg,)),
        ("auto-prune-cluster", prune_cfg, cluster_cfg, (prune_cfg, cluster_cfg)),
    ):
        if any(config is None for config in needed):
            out.append((name, None, none))
        else:
            out.append((name, Recipe(prune=p, cluster=c, quantization="int8", name=name), ""))
    return out


def _pareto(rows: list[dict], key: str = "gzip_bytes") -> None:
    """Marks the rows no other row beats on both `key` (gzip bytes or latency) and drop."""
    tried = [r for r in rows if r.get(key) is not None and r["drop"] is not None]
    for r in tried:
        r["pareto"] = not any(
            o is not r
            and o[key] <= r[key]
            and o["drop"] <= r["drop"]
            and (o[key] < r[key] or o["drop"] < r["drop"])
            for o in tried
        )


def _file_precision(report) -> str | None:
    """The row's "precision": "float32" when a quantizing candidate's .tflite kept every
    op float32 (an int8-mixed file that had to), else None."""
    from keras_squeeze.report.precision import float32_only

    if report.quantization != "float32" and float32_only(report.precision):
        return "float32"
    return None


def _time_and_choose(rows, kept, outcomes, job, verbose) -> tuple[dict, dict | None]:
    """objective="latency": every tried .tflite timed together (`auto_latency`); returns
    (the search's "latency" entry, the chosen row of `kept`)."""
    # over budget too: the table and chart place every tried candidate
    contents = {
        r["candidate"]: outcomes[r["candidate"]][0].tflite
        for r in rows
        if r["candidate"] in outcomes
    }
    say(verbose, f"auto: timing {len(contents)} .tflite files interleaved on this CPU")
    entry = auto_latency.time_candidates(rows, contents, auto_latency.feed(job))
    best, tied = auto_latency.fastest(kept)
    entry["tied"] = [r["candidate"] for r in tied]
    if best is not None and len(tied) > 1:
        best["note"] = (
            "as fast as "
            + ", ".join(r["candidate"] for r in tied if r is not best)
            + " within the spread of their medians; the smallest of them"
        )
    return entry, best


def _blocking_layers(job, budget_left, kwargs, trained: bool) -> list[str]:
    """The most sensitive layers (ks.sensitivity on the validation data), for the error."""
    from keras_squeeze.layer_sensitivity.measure import sensitivity

    try:
        table = sensitivity(
            job.model,
            (job.validation.inputs, job.validation.labels),
            representative_data=job.calibration.inputs if job.calibration else None,
            prune_rates=PRUNE_RATES if trained else (),
            cluster_counts=CLUSTER_COUNTS if trained else (),
            errors=() if trained else ("int8",),  # what the ranking below reads
            loss=kwargs.get("loss"),
            time_budget_s=budget_left,
            verbose=0,
        )
    except _CANDIDATE_ERRORS:
        return []
    by = None if trained else "int8.sqnr_db"
    described = []
    for row in table.ranked(by)[:3]:
        if by:
            sqnr = table.value(row, by)
            if sqnr is not None:
                described.append(f"{row.name} (int8 SQNR {sqnr:.1f} dB)")
        elif row.worst_drop is not None:
            described.append(f"{row.name} (drop {100 * row.worst_drop:.1f} points alone)")
    return described


def search(
    compress_fn,
    model,
    *,
    validation_data,
    train_data=None,
    representative_data=None,
    max_accuracy_drop=None,
    objective="size",
    time_budget_s=None,
    seed: int = 0,
    verbose: int = 1,
    strict: bool = False,
    **kwargs,
):
    """The "auto" recipe of compress() (see compress() and the module docstring).

    Args:
        compress_fn: compress() itself (called once per candidate).
        kwargs: compress()'s other arguments, passed to every candidate.

    Returns:
        The CompressionResult of the smallest candidate within the budget, with
        `report.search` filled.

    Raises:
        RecipeError / DataError: see `check_arguments`; and compress()'s own checks.
        VerificationError: no candidate met the budget (the message says what
            the best one reached and which layers are the most sensitive).
    """
    start = time.perf_counter()
    budget = check_arguments(objective, time_budget_s, max_accuracy_drop, validation_data)
    calibration_source = representative_data if representative_data is not None else train_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = checks.check(
            model,
            "int8",
            train_data=train_data,
            validation_data=validation_data,
            representative_data=(
                calibration_source if calibration_source is not None else validation_data
            ),
            teacher=None,
            distill=None,
            epochs=None,
            loss=kwargs.get("loss"),
            optimizer=None,
            batch_size=kwargs.get("batch_size", 32),
            steps_per_epoch=None,
            num_calibration_samples=kwargs.get(
                "num_calibration_samples", checks.DEFAULT_CALIBRATION_SAMPLES
            ),
            inference_input_type=None,
            inference_output_type=None,
            custom_objects=kwargs.get("custom_objects"),
            measure_latency=False,
            edgetpu=False,
            dynamic_batch=kwargs.get("dynamic_batch", False),
            strict=strict,
            allow_tf_ops=kwargs.get("allow_tf_ops", False),
            verbose=0,
            default_epochs=1,
            input_signature=kwargs.get("input_signature"),
        )
    budget = _labelled(job, budget)
    notes = []
    representative_data = calibration_source
    if calibration_source is None:
        representative_data = validation_data
        notes.append("calibrated on validation_data (no representative_data or train_data given)")
    kwargs.pop("custom_objects", None)
    common = dict(
        validation_data=validation_data,
        representative_data=representative_data,
        max_accuracy_drop=budget,
        verbose=0,
        strict=False,
        **kwargs,
    )
    say(
        verbose,
        f"auto: searching for the {'fastest' if objective == 'latency' else 'smallest'} "
        f".tflite within a drop of {100 * budget:.2f} "
        "points" + (f", for at most {time_budget_s:g} s" if time_budget_s else ""),
    )
    rows = [_row(name, Recipe.get(name), "post-training") for name in POST_TRAINING]
    recipes = {name: Recipe.get(name) for name in POST_TRAINING}
    best, best_result, stopped, table_seconds = None, None, False, None
    outcomes, kept = {}, []

    def out_of_time() -> bool:
        # The first candidate always starts: the search returns something or says why not.
        started = any(r["status"] in ("tried", "failed") for r in rows)
        return (
            started and time_budget_s is not None and time.perf_counter() - start >= time_budget_s
        )

    def run(row, recipe, data):
        nonlocal best, best_result, stopped
        if out_of_time():
            stopped = True
            row["note"] = NOT_STARTED
            return
        reason = _cannot_beat(row, best) if objective == "size" else None
        if reason:
            row["status"], row["note"] = "skipped", reason
            return
        if data is not None:
            import tensorflow as tf

            tf.keras.utils.set_random_seed(seed)
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                given = common if data is not None else without_training(common)
                result = compress_fn(job.model, recipe, train_data=data, **given)
        except _CANDIDATE_ERRORS as e:
            row["status"], row["seconds"] = "failed", time.perf_counter() - t0
            row["note"] = f"{type(e).__name__}: {str(e).split('. Expected')[0][:200]}"
            say(verbose, f"auto: {row['candidate']}: failed ({row['note']})")
            return
        report = result.report
        row["seconds"] = time.perf_counter() - t0
        row["status"] = "tried"
        row["tflite_bytes"] = report.compressed.tflite_bytes
        row["gzip_bytes"] = report.compressed.tflite_gzip_bytes
        row["metric_name"], row["metric"] = _metric(report)
        held = report.accuracy_budget or {}
        row["drop"] = held.get("drop")
        row["within_budget"] = bool(held.get("met"))
        row["precision"] = _file_precision(report)
        departs = not (report.conversion_parity or {}).get("ok", True)
        if strict and departs:  # strict: a file that departs from its Keras model is not kept
            row["note"] = "departs from the Keras model it was converted from (strict=True)"
        outcomes[row["candidate"]] = (result, caught)
        say(
            verbose,
            f"auto: {row['candidate']}: gzip {row['gzip_bytes']:,} bytes, drop "
            f"{_points(row['drop'])} points, {'within' if row['within_budget'] else 'over'} "
            f"budget ({row['seconds']:.1f} s)",
        )
        eligible = row["within_budget"] and not (strict and departs)
        if eligible:
            kept.append(row)
        if eligible and (best is None or row["gzip_bytes"] < best["gzip_bytes"]):
            best, best_result = row, result

    for row in rows:
        run(row, recipes[row["candidate"]], None)
    if train_data is not None:
        if out_of_time():
            stopped = True
            training = [(n, None, NOT_STARTED) for n in TRAINING_NAMES]
            table_seconds = None
        else:
            training = _training_rows(job, budget, time_budget_s, start, kwargs, verbose)
            table_seconds = training.pop()
        prune_cluster_ok = True
        distill_choice = DistillChoice(kwargs)
        for name, recipe, why in training:
            row = _row(name, recipe or Recipe(quantization="int8", name=name), "training")
            rows.append(row)
            if recipe is None:
                row["status"] = "not tried" if why == NOT_STARTED else "skipped"
                row["note"] = why
                continue
            if name == "auto-prune-cluster" and not prune_cluster_ok:
                row["status"] = "skipped"
                row["note"] = "pruning or clustering alone already exceeded the budget"
                continue
            for variant, variant_row in distill_choice.variants(row, recipe, rows):
                run(variant_row, variant, train_data)
            row = distill_choice.settle(row)
            if name != "auto-prune-cluster" and row["within_budget"] is False:
                prune_cluster_ok = False
    latency = None
    if objective == "latency" and kept:
        latency, best = _time_and_choose(rows, kept, outcomes, job, verbose)
    _pareto(rows, "latency_ms" if objective == "latency" else "gzip_bytes")
    elapsed = time.perf_counter() - start
    if best is None:
        tried = [r for r in rows if r["drop"] is not None]
        closest = min(tried, key=lambda r: r["drop"]) if tried else None
        left = None if time_budget_s is None else max(time_budget_s - elapsed, 1.0)
        blockers = _blocking_layers(job, left or 60.0, kwargs, train_data is not None)
        reached = (
            f"the closest, '{closest['candidate']}', lost {100 * closest['drop']:.3g} points "
            f"(gzip {closest['gzip_bytes']:,} bytes)"
            if closest
            else "no candidate finished"
        )
        raise VerificationError(
            f"No candidate of the 'auto' search met max_accuracy_drop={budget:g} "
            f"({100 * budget:.2f} points){' before time_budget_s ran out' if stopped else ''}; "
            "nothing was written. Expected a candidate within the budget (raise the budget, "
            "give train_data for training candidates, or keep the layers below in float). "
            f"Received: {reached}; tried "
            f"{', '.join(r['candidate'] for r in tried) or 'none'}; most sensitive layers: "
            f"{', '.join(blockers) or 'not measured'}"
        )
    best["chosen"] = True
    result, caught = outcomes[best["candidate"]]
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=3)
    report = result.report
    report.search = {
        "objective": objective,
        "max_drop": budget,
        "seed": seed,
        "chosen": best["candidate"],
        "seconds": round(elapsed, 3),
        "time_budget_s": time_budget_s,
        "stopped": stopped,
        "sensitivity_seconds": table_seconds,
        "layer_share": LAYER_SHARE,
        "latency": latency,
        "distill": distill_choice.summary() if train_data is not None else None,
        "candidates": rows,
        "notes": notes,
    }
    tried = sum(r["status"] == "tried" for r in rows)
    report.notes.append(_chosen_note(best, tried, budget, elapsed, objective))
    if stopped:
        report.warnings.append(
            f"{SEARCH_STOPPED}={time_budget_s:g}: returning the best candidate found so far; "
            "the candidates not started are listed in report.search"
        )
    say(verbose, search_text(report.search))
    if stopped:
        say(verbose, f"WARNING: {report.warnings[-1]}")
        warnings.warn(report.warnings[-1], UserWarning, stacklevel=3)
    say(verbose, report.notes[-1])
    return result


def _chosen_note(best, tried, budget, elapsed, objective) -> str:
    from keras_squeeze.report.search import label

    if objective == "latency":
        low, high = best["latency_spread_ms"]
        how = (
            f"p50 {best['latency_ms']:.4g} ms (spread {low:.4g}-{high:.4g} ms) on this CPU, "
            f"gzip {best['gzip_bytes']:,} bytes"
        )
        what = "the fastest"
    else:
        how, what = f"gzip {best['gzip_bytes']:,} bytes", "the smallest"
    return (
        f"auto: chose '{label(best)}' ({how}, drop {_points(best['drop'])} points), {what} of "
        f"{tried} candidates tried within max_accuracy_drop={budget:g}, in {elapsed:.1f} s"
    )


def _training_rows(job, budget, time_budget_s, start, kwargs, verbose) -> list:
    """The training candidates from the sensitivity table, then the table's seconds."""
    from keras_squeeze.layer_sensitivity.measure import sensitivity

    left = None if time_budget_s is None else max(time_budget_s - (time.perf_counter() - start), 1)
    say(verbose, "auto: measuring per-layer sensitivity for the training candidates")
    table = sensitivity(
        job.model,
        (job.validation.inputs, job.validation.labels),
        representative_data=job.calibration.inputs if job.calibration else None,
        prune_rates=PRUNE_RATES,
        cluster_counts=CLUSTER_COUNTS,
        errors=(),
        loss=kwargs.get("loss"),
        time_budget_s=left,
        verbose=0,
    )
    return [*training_candidates(table, budget), round(table.seconds, 3)]


class DistillChoice:
    """The distillation setting of the training candidates, chosen on the validation data.

    Unless `distill=` or `teacher=` was given, the first training candidate
    that runs is fine-tuned twice: distilled from the original model (the
    recipe's default ks.Distill()) and on labels only (its row named
    "<candidate>, labels only"). The setting whose result lost less on the
    validation data (labels only on a tie: it trains without a teacher) is the
    one every later training candidate fine-tunes with. Both rows stay
    candidates of the search. Each training row says its setting in `distill`
    and in its note; report.search["distill"] says what was chosen and why.
    """

    LABELS_ONLY = "labels only"

    def __init__(self, kwargs: dict):
        self.given = None
        if kwargs.get("distill") is not None:
            self.given = "distill= given"
        elif kwargs.get("teacher") is not None:
            self.given = "teacher= given"
        self.chosen: bool | None = None  # the recipe's distill field once chosen
        self.reason = self.given or "no training candidate ran"
        self.pair: tuple[dict, dict] | None = None

    @staticmethod
    def describe(distill) -> str:
        if distill is False:
            return DistillChoice.LABELS_ONLY
        from keras_squeeze.distillation.choice import describe
        from keras_squeeze.distillation.config import Distill

        return "distilled (" + describe(Distill() if distill is True else distill) + ")"

    def variants(self, row: dict, recipe: Recipe, rows: list) -> list[tuple[Recipe, dict]]:
        """(recipe, row) to run for this candidate; a second row is appended to `rows`."""
        import dataclasses

        if self.given is not None:
            row["distill"] = self.given
            return [(recipe, row)]
        if self.chosen is not None:
            chosen = dataclasses.replace(recipe, distill=self.chosen)
            row["recipe"] = chosen.get_config()
            row["distill"] = self.describe(self.chosen)
            row["note"] = f"{row['distill']}, as chosen on {self.pair[0]['candidate']}"
            return [(chosen, row)]
        labels = dataclasses.replace(recipe, distill=False, name=f"{recipe.name}-labels-only")
        labels_row = _row(f"{row['candidate']}, {self.LABELS_ONLY}", labels, "training")
        rows.append(labels_row)
        row["distill"] = self.describe(recipe.distill)
        labels_row["distill"] = self.LABELS_ONLY
        self.pair = (row, labels_row)
        return [(recipe, row), (labels, labels_row)]

    def settle(self, row: dict) -> dict:
        """After the runs of `row`: the choice made on its pair, and the row that speaks
        for the candidate (the chosen setting's)."""
        if self.given is not None or self.chosen is not None or self.pair is None:
            return row
        distilled, labels = self.pair
        if labels["drop"] is None and distilled["drop"] is None:
            self.pair, self.reason = None, "neither setting finished on the first candidate"
            return row
        if distilled["drop"] is None or (
            labels["drop"] is not None and labels["drop"] <= distilled["drop"]
        ):
            winner, loser = labels, distilled
        else:
            winner, loser = distilled, labels
        self.chosen = winner is not labels
        lost = "did not finish" if loser["drop"] is None else f"{_points(loser['drop'])}"
        tie = winner is labels and loser["drop"] == winner["drop"]
        self.reason = (
            f"on {distilled['candidate']}: {winner['distill']} lost "
            f"{_points(winner['drop'])} points on the validation data, {loser['distill']} "
            f"{lost}" + (" (a tie goes to labels only)" if tie else "")
        )
        for r in self.pair:
            r["note"] = (r["note"] + "; " if r["note"] else "") + (
                f"{r['distill']}: {'chosen' if r is winner else 'not chosen'} for the "
                "training candidates"
            )
        return winner

    def summary(self) -> dict:
        return {
            "chosen": None if self.chosen is None else self.describe(self.chosen),
            "reason": self.reason,
            "candidates": [r["candidate"] for r in self.pair] if self.pair else [],
        }


# compress()'s arguments every candidate gets as they were given.
PASSED_ON = (
    "teacher",
    "distill",
    "epochs",
    "loss",
    "optimizer",
    "batch_size",
    "steps_per_epoch",
    "num_calibration_samples",
    "custom_objects",
    "dynamic_batch",
    "allow_tf_ops",
    "input_signature",
    "callbacks",
    "strategy",
)
# compress()'s arguments the search cannot honour for every candidate.
REFUSED = {
    "inference_input_type": None,
    "inference_output_type": None,
    "measure_latency": False,
    "edgetpu": False,
    "checkpoint_dir": None,
}


TRAINING_ONLY = ("teacher", "distill", "epochs", "callbacks", "strategy")


def without_training(arguments: dict) -> dict:
    """The arguments of a post-training candidate: those of fine-tuning left out."""
    return {k: v for k, v in arguments.items() if k not in TRAINING_ONLY}


def passed_on(arguments: dict) -> dict:
    """The compress() arguments passed to every candidate.

    Raises:
        RecipeError: an argument the search cannot apply to every candidate.
    """
    for name, default in REFUSED.items():
        if arguments[name] != default:
            raise RecipeError(
                f"{name} does not apply to every candidate of the 'auto' search (its "
                "candidates differ in precision and model I/O). Expected it unset with "
                f"recipe='auto', or a fixed recipe. Received: {name}={arguments[name]!r}"
            )
    return {name: arguments[name] for name in PASSED_ON}


def check_not_searched(recipe, **given) -> None:
    """objective / time_budget_s / seed belong to the "auto" recipe only.

    Raises:
        RecipeError: one of them given with another recipe.
    """
    set_ = {k: v for k, v in given.items() if v is not None}
    if set_:
        name = recipe if isinstance(recipe, str) else getattr(recipe, "name", recipe)
        raise RecipeError(
            f"{', '.join(set_)} set{'s' if len(set_) == 1 else ''} the 'auto' search. Expected "
            f"recipe='auto' with {'it' if len(set_) == 1 else 'them'}. Received: "
            f"recipe={name!r}, " + ", ".join(f"{k}={v!r}" for k, v in set_.items())
        )
