"""report.md's per-stage table, report.html, the PNG charts and the terminal summary,
rendered from a real compress() run (pruning, int8, latency measured)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys

import pytest

from keras_squeeze.report import charts, files, html, summary


@pytest.fixture(scope="module")
def report(trained_models, digits8):
    from keras_squeeze.api.compress import compress

    (x, y), (xt, yt) = digits8
    result = compress(
        trained_models["keras3"],
        "prune",
        train_data=(x, y),
        validation_data=(xt, yt),
        epochs=1,
        measure_latency=True,
        verbose=0,
    )
    return result.report


@pytest.fixture(scope="module")
def report_json(report, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.json"
    path.write_text(report.to_json())
    return path


def test_stage_rows(report):
    original, pruned, final = summary.stage_rows(report)
    assert (original.stage, original.tflite_bytes) == ("original", report.original.tflite_bytes)
    assert original.accuracy == report.accuracy["original"]
    assert original.p50_ms == report.latency["original_p50_ms"]
    assert (pruned.stage, pruned.accuracy) == ("prune", report.stages[0]["accuracy"])
    assert pruned.tflite_bytes is None  # the last stage's .tflite is the final row
    assert final.stage == "prune .tflite" and final.model == "int8 .tflite"
    assert final.tflite_bytes == report.compressed.tflite_bytes
    assert final.gzip_bytes == report.compressed.tflite_gzip_bytes
    assert final.sqnr_db == report.fidelity.sqnr_db
    assert final.top1_agreement == report.fidelity.top1_agreement
    assert final.p50_ms == report.latency["compressed_p50_ms"]
    assert summary.stage_rows(json.loads(report.to_json())) == [original, pruned, final]


def test_markdown_table(report):
    lines = summary.stage_table_markdown(report)
    assert lines[0] == (
        "| stage | measured on | .tflite bytes | gzip bytes | accuracy | SQNR vs float | "
        "top-1 agreement | p50 latency |"
    )
    assert lines[1] == "|---|---|---:|---:|---:|---:|---:|---:|"
    assert len(lines) == 5
    assert f"| {report.compressed.tflite_bytes:,} |" in lines[4]
    assert f"{report.latency['compressed_p50_ms']:.3f} ms" in lines[4]
    assert f"| {report.accuracy['compressed']:.4f} |" in lines[4]


def test_columns_without_values_are_left_out():
    r = {
        "recipe": "float16",
        "quantization": "float16",
        "original": {"tflite_bytes": 1000, "tflite_gzip_bytes": 900},
        "compressed": {"tflite_bytes": 500, "tflite_gzip_bytes": 450},
        "fidelity": {"sqnr_db": 60.0, "top1_agreement": None},
    }
    header = summary.stage_table_markdown(r)[0]
    assert header == "| stage | measured on | .tflite bytes | gzip bytes | SQNR vs float |"
    assert summary.stage_table_text(r).splitlines()[4].split() == [
        "float16",
        "float16",
        ".tflite",
        "500",
        "450",
        "60.0",
        "dB",
    ]


def test_terminal_summary(report):
    text = summary.terminal_summary(report)
    assert text.startswith(report.table())
    assert summary.stage_table_text(report) in text
    assert text.splitlines()[-1] == summary.edgetpu_line(report)
    assert summary.edgetpu_line(report).startswith("Edge TPU (model.tflite): ")


def test_charts_are_pngs(report):
    pngs = charts.render_charts(report)
    assert list(pngs) == [charts.SIZE, charts.ACCURACY, charts.LATENCY, charts.SPARSITY]
    for png in pngs.values():
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_clusters_chart_when_layers_are_clustered(report):
    r = json.loads(report.to_json())
    r["latency"] = None
    for row in r["layers"][:4]:
        row["clusters"] = 16
    assert list(charts.render_charts(r)) == [
        charts.SIZE,
        charts.ACCURACY,
        charts.SPARSITY,
        charts.CLUSTERS,
    ]


_WITH_MATPLOTLIB = """
import json, sys
import matplotlib
before = dict.__getitem__(matplotlib.rcParams, "backend")
from keras_squeeze.report import files
names = files.write_report_files(json.loads(open(sys.argv[1]).read()), sys.argv[2])
after = dict.__getitem__(matplotlib.rcParams, "backend")
print(json.dumps({"names": names, "pyplot": "matplotlib.pyplot" in sys.modules,
                  "backend_same": after == before}))
"""
_WITHOUT_MATPLOTLIB = """
import json, sys
sys.modules["matplotlib"] = None
from keras_squeeze.report import files
print(json.dumps(files.write_report_files(json.loads(open(sys.argv[1]).read()), sys.argv[2])))
"""


def _probe(code: str, *args):
    proc = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_charts_leave_the_users_matplotlib_alone(report_json, tmp_path):
    """Rendered in a fresh process: pyplot is never imported and the backend never set."""
    probe = _probe(_WITH_MATPLOTLIB, report_json, tmp_path)
    assert probe == {
        "names": [charts.SIZE, charts.ACCURACY, charts.LATENCY, charts.SPARSITY, files.HTML],
        "pyplot": False,
        "backend_same": True,
    }
    page = (tmp_path / files.HTML).read_text()
    for name in probe["names"][:-1]:
        data = base64.b64encode((tmp_path / name).read_bytes()).decode()
        assert f'<img alt="{name}" src="data:image/png;base64,{data}">' in page


def test_without_matplotlib_only_the_html(report_json, tmp_path):
    assert _probe(_WITHOUT_MATPLOTLIB, report_json, tmp_path) == [files.HTML]
    assert sorted(p.name for p in tmp_path.iterdir()) == [files.HTML]
    page = (tmp_path / files.HTML).read_text()
    assert "Charts need matplotlib" in page and "<img" not in page
    assert '<span class="bar" style="width:' in page  # sparsity bars drawn in CSS instead


def test_html_is_self_contained_and_escaped(report):
    r = json.loads(report.to_json())
    r["notes"].append("<script>alert('x')</script> & more")
    r["layers"][0]["name"] = "conv<1>"
    page = html.to_html(r, charts.render_charts(r))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</body></html>")
    assert "<script" not in page and "<link" not in page
    assert re.findall(r'(?:src|href)="(?!data:image/png;base64,)', page) == []
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    assert "<td>conv&lt;1&gt;</td>" in page
    assert f"{report.compressed.tflite_bytes:,}" in page
    for warning in report.warnings:
        assert html.html.escape(warning) in page


def test_html_renders_the_same_from_report_json(report):
    assert html.to_html(report) == html.to_html(json.loads(report.to_json()))
