"""--flagfile of the three scripts, damaged: parsed, or exit 2 with one line on stderr.

Only the flags are parsed (no job runs): a flag file is the first thing a
script reads, before any library check.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import tempfile

from absl.testing import flagsaver
from hypothesis import given
from hypothesis import strategies as st

from keras_squeeze.cli import bench, common, compress, export
from tests.fuzz import cases
from tests.fuzz.strategies import budget, damaged, damaged_text

MODEL = cases.TFLITE_MODELS / "small_cnn_int8.tflite"
GOOD = {
    compress: "--recipe=prune\n--target_sparsity=0.5\n--epochs=2\n--output_dir=out\n--nobenchmark\n",
    export: f"--model={MODEL}\n--formats=tflite\n--formats=onnx\n--quantization=int8\n--data=digits\n",
    bench: f"--models={MODEL}\n--num_threads=2\n--min_runs=5\n--delegate_options=a:b;c:d\n",
}
FLAG_NAMES = ("model", "recipe", "epochs", "num_threads", "flagfile", "formats", "data", "models")


@st.composite
def flag_files(draw, script):
    how = draw(st.sampled_from(["bytes", "text", "lines", "include"]))
    if how == "bytes":
        return draw(damaged(GOOD[script].encode()))
    if how == "text":
        return draw(damaged_text(GOOD[script])).encode("utf-8", "surrogatepass")
    if how == "lines":
        lines = draw(
            st.lists(
                st.tuples(st.sampled_from(FLAG_NAMES), st.text(max_size=30)).map(
                    lambda kv: f"--{kv[0]}={kv[1]}"
                ),
                max_size=6,
            )
        )
        return "\n".join(lines).encode("utf-8", "surrogatepass")
    return b"--flagfile=%s\n" % draw(st.sampled_from([b"/nonexistent.flags", b"/", b"", b"\x00"]))


def parse(script, flagfile: pathlib.Path) -> tuple[int, list[str]]:
    saved = flagsaver.save_flag_values(script.FLAGS)
    err = io.StringIO()
    code = 0
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            common.parse_flags(
                script.PROGRAM, script.FLAGS, [script.PROGRAM, f"--flagfile={flagfile}"]
            )
    except SystemExit as e:
        code = e.code
    finally:
        flagsaver.restore_flag_values(saved, script.FLAGS)
    return code, [ln for ln in err.getvalue().splitlines() if ln.strip()]


def check(script, flagfile):
    code, lines = parse(script, flagfile)
    if code == 0:
        return
    assert code == 2, (code, lines)
    assert len(lines) == 1 and lines[0].startswith(f"{script.PROGRAM}: error: "), lines


@budget(150, deadline_s=10)
@given(data=st.data(), script=st.sampled_from([compress, export, bench]))
def test_flag_files(data, script):
    content = data.draw(flag_files(script))
    with tempfile.TemporaryDirectory() as tmp:
        flagfile = pathlib.Path(tmp) / "job.flags"
        flagfile.write_bytes(content)
        outcome = cases.run_case(check, script, flagfile, bound=10)
        assert outcome.kind == cases.READ, outcome
