"""The "auto" search's table (report.search), as text, markdown and HTML rows.

One row per candidate (see `keras_squeeze.api.auto`): its status, sizes,
metric and drop on the validation data, seconds, whether it met the budget,
and * on the Pareto front of gzip bytes against the drop; with
objective="latency" also its p50 latency on this CPU with the spread of its
block medians, the front then of latency against the drop. An "int8-mixed"
file that kept every op float32 is labelled "(float32: every op)".
"""

from __future__ import annotations

SEARCH_STOPPED = "SEARCH STOPPED AT time_budget_s"


def points(drop) -> str:
    return "-" if drop is None else f"{100 * drop:+.2f}"


SEARCH_HEADER = (
    "candidate",
    "kind",
    "status",
    ".tflite bytes",
    "gzip bytes",
    "metric",
    "drop (points)",
    "seconds",
    "within budget",
    "Pareto",
)


LATENCY_HEADER = ("p50 ms", "spread ms")


def label(row: dict) -> str:
    """A candidate's name, with "(float32: every op)" when its file kept every op float32."""
    if row.get("precision") == "float32":
        return f"{row['candidate']} (float32: every op)"
    return row["candidate"]


def _timed(search: dict) -> bool:
    return search.get("objective") == "latency"


def header(search: dict) -> tuple:
    """The table's columns: `SEARCH_HEADER`, with `LATENCY_HEADER` after the gzip bytes
    for objective="latency"."""
    if not _timed(search):
        return SEARCH_HEADER
    return (*SEARCH_HEADER[:5], *LATENCY_HEADER, *SEARCH_HEADER[5:])


def _latency_cells(r: dict) -> tuple[str, str]:
    if r.get("latency_ms") is None:
        return "", ""
    low, high = r["latency_spread_ms"]
    return f"{r['latency_ms']:.4g}", f"{low:.4g}-{high:.4g}"


def front_text(search: dict) -> str:
    return f"{'p50 latency' if _timed(search) else 'gzip bytes'} vs drop"


def search_rows(search: dict) -> list[tuple]:
    """The rows of the search table (`header(search)`), as text cells."""
    out = []
    for r in search["candidates"]:
        name = label(r) + (" (chosen)" if r.get("chosen") else "")
        metric = "" if r["metric"] is None else f"{r['metric_name']} {r['metric']:.4f}"
        within = "" if r["within_budget"] is None else ("yes" if r["within_budget"] else "no")
        out.append(
            (
                name,
                r["kind"],
                r["status"] + (f": {r['note']}" if r["note"] else ""),
                "" if r["tflite_bytes"] is None else f"{r['tflite_bytes']:,}",
                "" if r["gzip_bytes"] is None else f"{r['gzip_bytes']:,}",
                *(_latency_cells(r) if _timed(search) else ()),
                metric,
                "" if r["drop"] is None else points(r["drop"]),
                "" if r["seconds"] is None else f"{r['seconds']:.1f}",
                within,
                "*" if r.get("pareto") else "",
            )
        )
    return out


def search_text(search: dict) -> str:
    """The search table as plain text, for the terminal."""
    columns = header(search)
    rows = [columns, *search_rows(search)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    head = (
        f"auto search ({search['objective']}, max_accuracy_drop={search['max_drop']:g}, "
        f"{search['seconds']:.1f} s; * = Pareto front of {front_text(search)})"
    )
    if search.get("stopped"):
        head += f": {SEARCH_STOPPED}={search['time_budget_s']:g}"
    return "\n".join([head, *lines, *latency_lines(search)])


def latency_lines(search: dict) -> list[str]:
    """How the candidates were timed, with the noise caveat (objective="latency")."""
    lat = search.get("latency")
    if not lat:
        return []
    s = lat["settings"]
    return [
        f"latency: {lat['harness']}, {s['num_threads']} thread, {s['warmup_runs']} warm-up "
        f"rounds, >= {s['min_runs']} runs and {s['min_seconds']:g} s per file, on "
        f"{lat['inputs']}; p50 is the median of the runs, spread the lowest-highest median of "
        f"{lat['blocks']} blocks of them; {lat['machine']}",
        f"latency caveat: {lat['caveat']}",
    ]


def search_markdown(search: dict) -> list[str]:
    """The search table as report.md lines."""
    lines = [
        "",
        "## Auto search",
        "",
        f"Objective {search['objective']}, max_accuracy_drop={search['max_drop']:g}, seed "
        f"{search['seed']}, {search['seconds']:.1f} s; chosen: **{search['chosen']}**; "
        f"* marks the Pareto front of {front_text(search)}."
        + (f" **{SEARCH_STOPPED}={search['time_budget_s']:g}.**" if search.get("stopped") else ""),
        "",
        "| " + " | ".join(header(search)) + " |",
        "|---|---|---|" + "---:|" * (len(header(search)) - 5) + "---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in search_rows(search)]
    lines += [f"- {line}" for line in latency_lines(search)]
    return lines


def search_html(search: dict | None, table, escape) -> str:
    """The search table as an HTML section ('' without a search)."""
    if not search:
        return ""
    stopped = (
        f' <span class="warn">{SEARCH_STOPPED}={search["time_budget_s"]:g}</span>'
        if search.get("stopped")
        else ""
    )
    rows = [[escape(c) for c in r] for r in search_rows(search)]
    return (
        f"<h2>Auto search</h2><p>Objective {escape(search['objective'])}, max_accuracy_drop="
        f"{search['max_drop']:g}, chosen <b>{escape(search['chosen'])}</b>; * marks the "
        f"Pareto front of {front_text(search)}.{stopped}</p>"
        + table(header(search), rows, numeric=tuple(range(3, len(header(search)) - 2)))
        + "".join(f"<p>{escape(line)}</p>" for line in latency_lines(search))
    )
