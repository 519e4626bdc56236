"""edgetpu_compiler and benchmark_model output, damaged: parsed (what can be read) or refused.

The parsers return what they can read and never raise; compile_for_edgetpu,
given a compiler that prints damaged logs and writes damaged models, ends
in a compiled model or a KerasSqueezeError, and leaves no partial file.
"""

from __future__ import annotations

import functools
import pathlib
import stat
import sys
import tempfile
import textwrap

from hypothesis import given
from hypothesis import strategies as st

from keras_squeeze.bench.benchmark_output import parse_output
from keras_squeeze.edgetpu import compile_for_edgetpu, parse_compiler_log
from tests.fuzz import cases
from tests.fuzz.strategies import budget, damaged, damaged_text


@functools.cache
def _recorded(folder: pathlib.Path) -> tuple[str, ...]:
    return tuple(
        p.read_text(errors="replace")
        for p in sorted(folder.iterdir())
        if p.suffix in (".txt", ".log") and p.name != "SOURCES.md"
    )


@st.composite
def logs(draw, folder):
    return draw(
        st.one_of(
            damaged_text(draw(st.sampled_from(_recorded(folder)))),
            st.text(max_size=2000),
        )
    )


@budget(150, deadline_s=10)
@given(text=logs(cases.EDGETPU_LOGS))
def test_compiler_log(text):
    log = cases.run_case(parse_compiler_log, text, bound=10)
    assert log.kind == cases.READ, log


@budget(150, deadline_s=10)
@given(text=logs(cases.BENCHMARK_LOGS))
def test_benchmark_model_output(text):
    out = cases.run_case(parse_output, text, bound=10)
    assert out.kind == cases.READ, out


def _fake_compiler(folder: pathlib.Path, stdout: bytes, exit_code: int, model: bytes | None):
    """An edgetpu_compiler that prints `stdout`, writes `model` as its output, exits `exit_code`."""
    (folder / "stdout.bin").write_bytes(stdout)
    if model is not None:
        (folder / "model.bin").write_bytes(model)
    path = folder / "edgetpu_compiler"
    path.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import pathlib, shutil, sys
            here = pathlib.Path({str(folder)!r})
            sys.stdout.buffer.write((here / "stdout.bin").read_bytes())
            model = pathlib.Path(sys.argv[-1])
            out_dir = pathlib.Path(sys.argv[sys.argv.index("--out_dir") + 1])
            if (here / "model.bin").exists():
                shutil.copy(here / "model.bin", out_dir / (model.stem + "_edgetpu.tflite"))
                (out_dir / (model.stem + "_edgetpu.log")).write_bytes(
                    (here / "stdout.bin").read_bytes()[::-1])
            sys.exit({exit_code})
            """
        )
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def compile_once(executable, target: pathlib.Path):
    """compile_for_edgetpu of the int8 reference model with `executable`; checks the target."""
    content = cases.reference_tflite("small_cnn_int8.tflite")
    path, log = compile_for_edgetpu(content, target, executable=executable, timeout=60)
    assert path == target and target.read_bytes()[4:8] == b"TFL3" and log is not None


@budget(15)
@given(
    stdout=st.one_of(st.binary(max_size=2000), logs(cases.EDGETPU_LOGS).map(str.encode)),
    exit_code=st.sampled_from([0, 0, 1, 2, 139]),
    model=st.one_of(st.none(), damaged(cases.reference_tflite("small_cnn_int8.tflite"))),
)
def test_compile_for_edgetpu_on_damaged_output(stdout, exit_code, model):
    """A compiler that prints damaged logs and writes damaged models: no partial output."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        exe = _fake_compiler(folder, stdout, exit_code, model)
        target = folder / "out" / "model_edgetpu.tflite"
        outcome = cases.run_case(compile_once, exe, target, bound=90)
        cases.assert_clean(outcome, ["edgetpu_compiler", "model_edgetpu.tflite"])
        if outcome.kind != cases.READ:
            assert not target.parent.exists() or not any(target.parent.iterdir())
