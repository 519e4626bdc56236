"""PNG charts of a report: size, accuracy and latency per stage; sparsity and clusters per layer.

Drawn on `matplotlib.figure.Figure` with the Agg canvas, never through
pyplot, so the user's matplotlib backend and open figures are untouched.
matplotlib is optional (`pip install "keras-squeeze[charts]"`): without it
`render_charts` returns no charts and `charts_available()` is False.

Example:
    >>> pngs = render_charts(result.report)      # {"report_size.png": b"\\x89PNG...", ...}
    >>> sorted(pngs)
    ['report_accuracy.png', 'report_size.png', 'report_sparsity.png']
"""

from __future__ import annotations

import io

import numpy as np

from keras_squeeze.report.summary import as_dict, stage_rows

SIZE = "report_size.png"
ACCURACY = "report_accuracy.png"
MSE = "report_mse.png"
LATENCY = "report_latency.png"
SPARSITY = "report_sparsity.png"
CLUSTERS = "report_clusters.png"
SEARCH = "report_search.png"
# A layer counts as sparse in the chart from this fraction of zeros.
MIN_SPARSITY_SHOWN = 0.01
_BLUE, _ORANGE, _GREY = "#4C72B0", "#DD8452", "#8C8C8C"


def charts_available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _bars(labels, series, title: str, ylabel: str, fmt: str, ylim=None) -> bytes:
    """Grouped vertical bars: series is [(name, values, colour)], None values skipped."""
    fig, ax = _figure(max(4.5, 1.5 * len(labels) + 1.5), 3.6)
    width = 0.8 / len(series)
    for k, (name, values, colour) in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(labels))]
        pairs = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        if not pairs:
            continue
        bars = ax.bar([p[0] for p in pairs], [p[1] for p in pairs], width, label=name, color=colour)
        ax.bar_label(bars, labels=[fmt.format(p[1]) for p in pairs], fontsize=7, padding=2)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8, rotation=15 if len(labels) > 3 else 0)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    if ylim is not None:
        ax.set_ylim(*ylim)
    else:
        ax.margins(y=0.15)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _png(fig)


def _layer_bars(names, values, title: str, xlabel: str, fmt: str, targets=None, xlim=None) -> bytes:
    """Horizontal bars per layer, with target markers when given."""
    fig, ax = _figure(7.0, max(2.0, 0.32 * len(names) + 1.0))
    ys = list(range(len(names)))[::-1]
    bars = ax.barh(ys, values, color=_BLUE, label="measured in the .tflite")
    ax.bar_label(bars, labels=[fmt.format(v) for v in values], fontsize=7, padding=2)
    if targets and any(t is not None for t in targets):
        points = [(t, y) for t, y in zip(targets, ys, strict=True) if t is not None]
        ax.scatter(
            [p[0] for p in points],
            [p[1] for p in points],
            marker="|",
            s=200,
            color=_ORANGE,
            label="target",
            zorder=3,
        )
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_yticks(ys)
    ax.set_yticklabels(names, fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    if xlim is not None:
        ax.set_xlim(*xlim)
    else:
        ax.margins(x=0.15)
    return _png(fig)


def render_charts(report) -> dict[str, bytes]:
    """The report's charts as PNG bytes by file name; empty without matplotlib.

    - report_size.png: .tflite and gzip bytes per stage (where measured);
    - report_accuracy.png: accuracy per stage, when validation labels were given;
    - report_mse.png: mean squared error per stage, for a model with a
      regression output (boxes, embeddings, ...) and validation labels;
    - report_latency.png: p50 / p90 of the original and compressed .tflite,
      when latency was measured;
    - report_sparsity.png: measured zeros per layer (and the target), when
      some layer is sparse;
    - report_clusters.png: unique kernel values per layer, when clustered;
    - report_search.png: the "auto" search's candidates, gzip bytes (p50
      latency with its spread, for objective="latency") against the metric
      drop, the Pareto front joined and the budget drawn.

    Args:
        report: a Report or its to_dict() / report.json.
    """
    if not charts_available():
        return {}
    r = as_dict(report)
    rows = stage_rows(r)
    out = {}
    sized = [row for row in rows if row.tflite_bytes is not None]
    out[SIZE] = _bars(
        [row.stage for row in sized],
        [
            (".tflite", [row.tflite_bytes / 1024 for row in sized], _BLUE),
            ("gzip", [row.gzip_bytes / 1024 for row in sized], _ORANGE),
        ],
        "Model size per stage",
        "KiB",
        "{:,.0f}",
    )
    scored = [row for row in rows if row.accuracy is not None]
    if scored:
        out[ACCURACY] = _bars(
            [row.stage for row in scored],
            [("accuracy", [row.accuracy for row in scored], _BLUE)],
            f"Accuracy per stage ({(r.get('accuracy') or {}).get('samples', '?')} samples)",
            "top-1 accuracy",
            "{:.3f}",
            ylim=(0, 1.08),
        )
    errors = [row for row in rows if row.mse is not None]
    if errors:
        regression = r.get("regression") or {}
        name = f", output '{regression['output']}'" if regression.get("per_output") else ""
        out[MSE] = _bars(
            [row.stage for row in errors],
            [("MSE", [row.mse for row in errors], _BLUE)],
            f"Mean squared error per stage ({regression.get('samples', '?')} samples{name})",
            "MSE (lower is better)",
            "{:.3g}",
        )
    lat = r.get("latency")
    if lat:
        out[LATENCY] = _bars(
            ["original float32", f"{r['recipe']}"],
            [
                ("p50", [lat["original_p50_ms"], lat["compressed_p50_ms"]], _BLUE),
                ("p90", [lat.get("original_p90_ms"), lat.get("compressed_p90_ms")], _GREY),
            ],
            f"Latency on this CPU ({lat.get('num_threads', 1)} thread, interleaved)",
            "ms per inference",
            "{:.3f}",
        )
    layers = r.get("layers") or []
    sparse = [
        row
        for row in layers
        if row.get("sparsity") is not None
        and (row["sparsity"] >= MIN_SPARSITY_SHOWN or (row.get("targets") or {}).get("sparsity"))
    ]
    clustered = [row for row in layers if row.get("clusters") is not None]
    for name, rows, key, title, xlabel, fmt, xlim in (
        (
            SPARSITY,
            sparse,
            "sparsity",
            "Zeros per layer",
            "fraction of zero weights",
            "{:.0%}",
            (0, 1.12),
        ),
        (
            CLUSTERS,
            clustered,
            "clusters",
            "Unique weight values per layer",
            "unique values",
            "{:,}",
            None,
        ),
    ):
        if rows:
            out[name] = _layer_bars(
                [row["name"] for row in rows],
                [row[key] for row in rows],
                f"{title} (kernel in the .tflite)",
                xlabel,
                fmt,
                targets=[(row.get("targets") or {}).get(key) for row in rows],
                xlim=xlim,
            )
    if r.get("search"):
        chart = search_chart(r["search"])
        if chart:
            out[SEARCH] = chart
    return out


def search_chart(search: dict) -> bytes | None:
    """report_search.png: each tried candidate at (gzip KiB, or p50 ms with its spread as
    a bar for objective="latency"; drop in points), the Pareto front joined, the budget as
    a line and the chosen one ringed; None without points."""
    from keras_squeeze.report.search import label

    timed = search.get("objective") == "latency"
    key, scale = ("latency_ms", 1.0) if timed else ("gzip_bytes", 1 / 1024)
    tried = [c for c in search["candidates"] if c.get(key) is not None and c["drop"] is not None]
    if not tried:
        return None
    fig, ax = _figure(6.0, 3.8)
    for c in tried:
        colour = _BLUE if c["within_budget"] else _GREY
        x, y = c[key] * scale, 100 * c["drop"]
        if timed:
            low, high = c["latency_spread_ms"]
            ax.errorbar([x], [y], xerr=[[x - low], [high - x]], color=colour, capsize=3)
        ax.scatter([x], [y], color=colour, zorder=3)
        if c.get("chosen"):
            ax.scatter([x], [y], s=180, facecolors="none", edgecolors=_ORANGE, zorder=4)
        ax.annotate(label(c), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    front = sorted((c for c in tried if c.get("pareto")), key=lambda c: c[key])
    if len(front) > 1:
        ax.plot(
            [c[key] * scale for c in front],
            [100 * c["drop"] for c in front],
            color=_ORANGE,
            linewidth=1,
            label="Pareto front",
        )
        ax.legend(fontsize=8)
    ax.axhline(100 * search["max_drop"], color=_GREY, linestyle="--", linewidth=0.8)
    ax.set_xlabel("p50 ms on this CPU (bar: spread of block medians)" if timed else "gzip KiB")
    ax.set_ylabel("metric drop (points)")
    budget = f"budget {100 * search['max_drop']:g} points"
    ax.set_title(f"auto search: chose {search['chosen']} ({budget})")
    return _png(fig)


_PROBE_COLOURS = ("#4C72B0", "#55A868", "#C44E52", "#8172B2", "#CCB974", "#64B5CD", "#DD8452")


def sensitivity_chart(table: dict) -> bytes | None:
    """sensitivity.png of a `ks.sensitivity` table (its to_dict()): per layer, the metric
    drop of every weight probe (grouped bars, points) and, beside it, each error probe's
    SQNR in dB; None without matplotlib or rows."""
    if not charts_available() or not table.get("layers"):
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = table["layers"]
    drops = table["probes"]["drops"]
    errors = table["probes"]["errors"]
    panels = (1 if drops else 0) + (1 if errors else 0)
    if panels == 0:
        return None
    fig = Figure(figsize=(4.5 * panels + 1.5, max(2.5, 0.45 * len(rows) + 1.2)), dpi=100)
    FigureCanvasAgg(fig)
    axes = list(np.atleast_1d(fig.subplots(1, panels, sharey=True)))
    ys = list(range(len(rows)))[::-1]
    names = [r["name"] for r in rows]
    if drops:
        ax = axes.pop(0)
        height = 0.8 / len(drops)
        for k, probe in enumerate(drops):
            offset = (k - (len(drops) - 1) / 2) * height
            values = [r["drops"].get(probe["name"]) for r in rows]
            points = [
                (y + offset, 100 * v) for y, v in zip(ys, values, strict=True) if v is not None
            ]
            if points:
                ax.barh(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    height,
                    label=probe["label"],
                    color=_PROBE_COLOURS[k % len(_PROBE_COLOURS)],
                )
        ax.axvline(0, color=_GREY, linewidth=0.8)
        ax.set_yticks(ys)
        ax.set_yticklabels(names, fontsize=7)
        ax.set_xlabel(f"drop in {table['metric']} (points)", fontsize=8)
        ax.set_title("Each layer changed alone, no fine-tuning", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.legend(fontsize=7)
    if errors:
        ax = axes.pop(0)
        height = 0.8 / len(errors)
        for k, probe in enumerate(errors):
            offset = (k - (len(errors) - 1) / 2) * height
            points = []
            for y, r in zip(ys, rows, strict=True):
                err = r["errors"].get(probe["name"])
                sqnr = None if err is None else err.get("sqnr_db")
                if isinstance(sqnr, (int, float)) and np.isfinite(sqnr):
                    points.append((y + offset, sqnr))
            if points:
                bars = ax.barh(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    height,
                    label=probe["label"],
                    color=_PROBE_COLOURS[(k + 3) % len(_PROBE_COLOURS)],
                )
                ax.bar_label(bars, labels=[f"{p[1]:.0f}" for p in points], fontsize=7, padding=2)
        ax.set_yticks(ys)
        ax.set_yticklabels(names, fontsize=7)
        ax.set_xlabel("SQNR of the layer's own quantization (dB, lower is worse)", fontsize=8)
        ax.set_title("Per-layer quantization error", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.margins(x=0.15)
        ax.legend(fontsize=7)
    return _png(fig)
