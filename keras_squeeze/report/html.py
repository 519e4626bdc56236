"""report.html: the report as one self-contained page (no scripts, no network).

Styles are inline, charts are embedded as data: URIs, every value is
HTML-escaped. Without matplotlib the page has the same tables, with a bar
drawn in CSS next to each layer's sparsity.

Example:
    >>> page = to_html(result.report, render_charts(result.report))
    >>> pathlib.Path("report.html").write_text(page)
"""

from __future__ import annotations

import base64
import html

from keras_squeeze.report.layers import format_target, target_keys
from keras_squeeze.report.search import search_html
from keras_squeeze.report.summary import (
    HEADER,
    OUTPUT_HEADER,
    as_dict,
    edgetpu_line,
    output_cells,
    output_rows,
    stage_cells,
    stage_rows,
    used_columns,
)

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;vertical-align:top}
th{background:#f4f4f4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.75rem}.card{border:1px solid #ddd;border-radius:6px;
padding:.5rem .9rem;min-width:9rem}.card b{display:block;font-size:1.3rem}
.bar{background:#4C72B0;height:.7rem;display:inline-block;vertical-align:middle}
.warn{color:#a40000}.muted{color:#666}img{max-width:100%;margin:.5rem 0}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _table(header, rows, numeric=()) -> str:
    """An HTML table; cells are already escaped; columns in `numeric` align right."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cards(r: dict) -> str:
    cards = [
        (".tflite size", f"{r['compressed']['tflite_bytes'] / r['original']['tflite_bytes']:.2f}x"),
        (
            "gzip size",
            f"{r['compressed']['tflite_gzip_bytes'] / r['original']['tflite_gzip_bytes']:.2f}x",
        ),
    ]
    acc = r.get("accuracy")
    if acc:
        cards.append(("accuracy", f"{acc['original']:.3f} → {acc['compressed']:.3f}"))
    reg = r.get("regression")
    if reg:
        cards.append(("MSE", f"{reg['original']:.3g} → {reg['compressed']:.3g}"))
    fid = r.get("fidelity") or {}
    if fid.get("top1_agreement") is not None:
        cards.append(("top-1 agreement", f"{fid['top1_agreement']:.1%}"))
    lat = r.get("latency")
    if lat:
        cards.append(("speed-up (p50)", f"{lat['speedup']:.2f}x"))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><span class="muted">{k}</span><b>{v}</b></div>' for k, v in cards
        )
        + "</div>"
    )


def _meta(r: dict) -> str:
    items = [
        ("Keras flavour", r.get("keras_flavour")),
        ("Quantization", f"{r.get('quantization')}: {r.get('scheme')}"),
        ("Calibration", r.get("calibration")),
        ("Fidelity measured on", (r.get("fidelity") or {}).get("inputs")),
        ("Conversion time", f"{r.get('conversion_seconds', 0):.2f} s"),
        ("Parameters", f"{r['original']['params']:,} → {r['compressed']['params']:,}"),
    ]
    scored = r.get("accuracy") or r.get("regression")
    if scored:
        what = "Accuracy" if r.get("accuracy") else "Error"
        items.append((f"{what} measured on", f"{scored['samples']} samples from {scored['data']}"))
    lat = r.get("latency")
    if lat:
        items.append(("Latency", f"{lat.get('measured')}, {lat.get('machine')}"))
    return (
        "<ul>"
        + "".join(f"<li><b>{_e(k)}:</b> {_e(v)}</li>" for k, v in items if v is not None)
        + "</ul>"
    )


def _stages(r: dict) -> str:
    table = [stage_cells(row) for row in stage_rows(r)]
    cols = used_columns(table)
    rows = [[_e(row[i]) for i in cols] for row in table]
    out = _table([HEADER[i] for i in cols], rows, numeric=range(2, len(cols)))
    notes = [
        f"{st['name']}: {note}" for st in r.get("stages") or [] for note in st.get("notes", [])
    ]
    if notes:
        out += "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"
    return out


def _outputs(r: dict) -> str:
    table = [output_cells(row) for row in output_rows(r)]
    cols = [i for i in range(len(OUTPUT_HEADER)) if i < 2 or any(row[i] for row in table)]
    rows = [[_e(row[i]) for i in cols] for row in table]
    return _table([OUTPUT_HEADER[i] for i in cols], rows, numeric=range(2, len(cols)))


def _layers(r: dict) -> str:
    layers = r.get("layers") or []
    keys = target_keys(layers)
    clustered = any(row.get("clusters") is not None for row in layers)
    rows = []
    for row in layers:
        sparsity = row.get("sparsity")
        bar = (
            ""
            if sparsity is None
            else f'<span class="bar" style="width:{sparsity * 80:.0f}px"></span> {sparsity:.1%}'
        )
        targets = row.get("targets") or {}
        cells = [_e(row["name"]), _e(row["type"]), f"{row['params']:,}", _e(row.get("quantized"))]
        cells += [bar, *[_e(format_target(targets.get(key))) for key in keys]]
        cells += [_e(row.get("clusters"))] if clustered else []
        rows.append([*cells, _e(row.get("reason"))])
    header = ["layer", "type", "params", ".tflite kernel", "sparsity"]
    header += [f"{key} target" for key in keys] + (["clusters"] if clustered else [])
    return _table([*header, "note"], rows, numeric=range(2, len(header)))


def _exports(r: dict) -> str:
    exports = r.get("exports") or {}
    if not exports:
        return ""
    rows = []
    for name, rec in exports.items():
        fid = rec.get("fidelity") or {}
        sq = fid.get("sqnr_db")
        rows.append(
            [
                _e(name),
                _e(rec.get("path")),
                f"{rec.get('bytes', 0):,}",
                _e(sq if isinstance(sq, str) or sq is None else f"{sq:.1f} dB"),
                _e("; ".join(rec.get("notes", []))),
            ]
        )
    return "<h2>Exports</h2>" + _table(
        ["format", "path", "bytes", "SQNR vs float", "notes"], rows, numeric=(2, 3)
    )


def _edgetpu(r: dict) -> str:
    line = edgetpu_line(r)
    if not line:
        return ""
    e = r["edgetpu"]
    items = [_e(line)]
    items += [f'<span class="warn">blocker: {_e(b)}</span>' for b in e.get("blockers", [])]
    first = e.get("first_cpu_op")
    if first:
        items.append(f"first op on the CPU: {_e(first['op'])} ({_e(first.get('why'))})")
    if e.get("compiler_note"):
        items.append(_e(e["compiler_note"]))
    return "<h2>Edge TPU</h2><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _charts(charts: dict[str, bytes] | None) -> str:
    if not charts:
        return (
            '<h2>Charts</h2><p class="muted">Charts need matplotlib: '
            "pip install 'keras-squeeze[charts]'.</p>"
        )
    images = "".join(
        f'<img alt="{_e(name)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for name, png in charts.items()
    )
    return f"<h2>Charts</h2>{images}"


def to_html(report, charts: dict[str, bytes] | None = None) -> str:
    """The report as a self-contained HTML page.

    Args:
        report: a Report, or its to_dict() / a loaded report.json.
        charts: PNG bytes by name (from `render_charts`), embedded inline.
    """
    r = as_dict(report)
    notes = [f"<li>{_e(n)}</li>" for n in r.get("notes", [])]
    notes += [f'<li class="warn"><b>Warning:</b> {_e(w)}</li>' for w in r.get("warnings", [])]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>keras_squeeze report: {_e(r['recipe'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>keras_squeeze report: {_e(r['recipe'])}</h1>",
        _cards(r),
        _meta(r),
        *(
            ["<h2>Per output</h2>", _outputs(r)]
            if len((r.get("fidelity") or {}).get("outputs") or []) > 1
            else []
        ),
        "<h2>Per stage</h2>",
        _stages(r),
        _charts(charts),
        _edgetpu(r),
        search_html(r.get("search"), _table, _e),
        _exports(r),
        "<h2>Layers</h2>",
        _layers(r),
    ]
    if notes:
        parts += ["<h2>Notes</h2><ul>", *notes, "</ul>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
