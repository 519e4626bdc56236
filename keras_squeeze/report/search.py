"""The "auto" search's table (report.search), as text, markdown and HTML rows.

One row per candidate (see `keras_squeeze.api.auto`): its status, sizes,
metric and drop on the validation data, seconds, whether it met the budget,
and * on the Pareto front of gzip bytes against the drop.
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


def search_rows(search: dict) -> list[tuple]:
    """The rows of the search table (`SEARCH_HEADER`), as text cells."""
    out = []
    for r in search["candidates"]:
        name = r["candidate"] + (" (chosen)" if r.get("chosen") else "")
        metric = "" if r["metric"] is None else f"{r['metric_name']} {r['metric']:.4f}"
        within = "" if r["within_budget"] is None else ("yes" if r["within_budget"] else "no")
        out.append(
            (
                name,
                r["kind"],
                r["status"] + (f": {r['note']}" if r["note"] else ""),
                "" if r["tflite_bytes"] is None else f"{r['tflite_bytes']:,}",
                "" if r["gzip_bytes"] is None else f"{r['gzip_bytes']:,}",
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
    rows = [SEARCH_HEADER, *search_rows(search)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(SEARCH_HEADER))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    head = (
        f"auto search ({search['objective']}, max_accuracy_drop={search['max_drop']:g}, "
        f"{search['seconds']:.1f} s; * = Pareto front of gzip bytes vs drop)"
    )
    if search.get("stopped"):
        head += f": {SEARCH_STOPPED}={search['time_budget_s']:g}"
    return "\n".join([head, *lines])


def search_markdown(search: dict) -> list[str]:
    """The search table as report.md lines."""
    lines = [
        "",
        "## Auto search",
        "",
        f"Objective {search['objective']}, max_accuracy_drop={search['max_drop']:g}, seed "
        f"{search['seed']}, {search['seconds']:.1f} s; chosen: **{search['chosen']}**; "
        "* marks the Pareto front of gzip bytes against the metric drop."
        + (f" **{SEARCH_STOPPED}={search['time_budget_s']:g}.**" if search.get("stopped") else ""),
        "",
        "| " + " | ".join(SEARCH_HEADER) + " |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in search_rows(search)]
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
        f"Pareto front of gzip bytes against the drop.{stopped}</p>"
        + table(SEARCH_HEADER, rows, numeric=(3, 4, 5, 6, 7))
    )
