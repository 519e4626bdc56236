"""The human-readable report files next to report.json: report.html and PNG charts.

`CompressionResult.save()` calls `write_report_files(report, staging_dir)`
after report.json / report.md; the names it returns are moved into place with
them.

Example:
    >>> write_report_files(result.report, "out/")
    ['report_size.png', 'report_accuracy.png', 'report.html']
"""

from __future__ import annotations

import pathlib

from keras_squeeze.report.charts import render_charts
from keras_squeeze.report.html import to_html

HTML = "report.html"


def write_report_files(report, directory) -> list[str]:
    """Writes report.html and, when matplotlib is installed, the report_*.png charts.

    Each file is written atomically. The HTML embeds the charts, so it is
    complete on its own; the PNG files are for embedding elsewhere.

    Returns:
        The file names written, charts first.
    """
    from keras_squeeze.core import atomic

    directory = pathlib.Path(directory)
    charts = render_charts(report)
    for name, png in charts.items():
        atomic.write_bytes(directory / name, png)
    atomic.write_text(directory / HTML, to_html(report, charts))
    return [*charts, HTML]
