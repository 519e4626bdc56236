"""benchmarks/run.py: flags, section order, --jobs worker processes, failures kept apart."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from benchmarks import common, run
from benchmarks.common import Table


def fast_section() -> list[Table]:
    table = Table("fast", ["pid"])
    table.add(os.getpid())
    return [table]


def other_section() -> list[Table]:
    table = Table("other", ["pid"])
    table.add(os.getpid())
    return [table]


def modules_seen() -> tuple[bool, bool]:
    """(tensorflow imported, tfmot imported) as a worker starts."""
    return "tensorflow" in sys.modules, "tensorflow_model_optimization" in sys.modules


def failing_section() -> list[Table]:
    raise ValueError("section could not finish")


@pytest.fixture
def runner(tmp_path, monkeypatch):
    """run.main over three small sections, writing into a results file of its own."""
    monkeypatch.setattr(run, "RESULTS", tmp_path / "RESULTS.md")
    monkeypatch.setattr(run, "FULL_RESULTS", run.RESULTS)
    monkeypatch.setattr(
        run, "SECTIONS", {"fast": fast_section, "other": other_section, "bad": failing_section}
    )
    return run


def test_jobs_default_and_flag(monkeypatch):
    monkeypatch.setattr(common, "QUICK", False)
    assert run._jobs([]) == 1
    assert run._jobs(["--jobs=3"]) == 3
    monkeypatch.setattr(common, "QUICK", True)
    assert run._jobs(["--quick"]) == 2
    assert run._jobs(["--quick", "--jobs=1"]) == 1


@pytest.mark.parametrize("value", ["0", "two", "-1", ""])
def test_bad_jobs_is_refused(value):
    with pytest.raises(
        SystemExit, match=f"--jobs must be a positive integer. Received: --jobs={value}$"
    ):
        run._jobs([f"--jobs={value}"])


def test_unknown_flag_and_section_are_refused(runner, capsys):
    assert runner.main(["run.py", "--job=2"]) == 2
    assert "unknown flag(s) ['--job=2']" in capsys.readouterr().err
    assert runner.main(["run.py", "nope"]) == 2
    assert "unknown section(s) ['nope']" in capsys.readouterr().err
    assert not runner.RESULTS.exists()


def test_longest_first_reads_recorded_times(runner):
    runner.RESULTS.write_text(
        "# header\n\n## fast (12 s, measured 2026-12-01)\n\nx\n"
        "## other (340 s, measured 2026-12-01)\n\ny\n"
    )
    # "bad" was never timed, so it may be the longest: it goes first.
    assert runner._longest_first(["fast", "other", "bad"]) == ["bad", "other", "fast"]


def test_quick_run_orders_by_full_times_where_quick_file_lacks_some(runner, monkeypatch):
    runner.FULL_RESULTS.write_text(
        "# header\n\n## fast (12 s, measured 2026-12-01)\n\nx\n"
        "## other (340 s, measured 2026-12-01)\n\ny\n"
        "## bad (90 s, measured 2026-12-01)\n\nz\n"
    )
    monkeypatch.setattr(runner, "RESULTS", runner.FULL_RESULTS.with_name("RESULTS.quick.md"))
    # No quick file (a fresh clone): the full run's order.
    assert runner._longest_first(["fast", "other", "bad"]) == ["other", "bad", "fast"]
    # A quick file with only some of them: still the full order, one scale for all.
    runner.RESULTS.write_text("# quick\n\n## fast (400 s, measured 2026-12-02)\n\nx\n")
    assert runner._longest_first(["fast", "other", "bad"]) == ["other", "bad", "fast"]
    # A quick file with all of them: its own times.
    runner.RESULTS.write_text(
        "# quick\n\n## fast (400 s, measured 2026-12-02)\n\nx\n"
        "## other (30 s, measured 2026-12-02)\n\ny\n"
        "## bad (50 s, measured 2026-12-02)\n\nz\n"
    )
    assert runner._longest_first(["fast", "other", "bad"]) == ["fast", "bad", "other"]


def test_sequential_run_keeps_going_past_a_failure(runner, capsys):
    assert runner.main(["run.py", "fast", "bad", "other"]) == 1
    out, err = capsys.readouterr()
    assert "section 'bad' failed" in err and "section could not finish" in err
    assert "2 section(s) in" in out and "(1 at a time)" in out
    written = runner._sections_on_disk()
    assert set(written) == {"fast", "other"}
    assert written["fast"].startswith("## fast (0 s, measured ")
    # the CPU it ran on: int8 speed-ups move with its dot-product instructions
    assert written["fast"].splitlines()[0].endswith(f" on {common.cpu()})")
    assert str(os.getpid()) in written["fast"]  # ran here, in this process


def test_jobs_run_sections_in_worker_processes(runner, capsys):
    runner.RESULTS.write_text("# old\n\n## bad (5 s, measured 2026-11-30)\n\nlast good rows\n")
    assert runner.main(["run.py", "--jobs=2", "fast", "other", "bad"]) == 1
    out, err = capsys.readouterr()
    assert "section 'bad' failed" in err and "section could not finish" in err
    assert "2 section(s) in" in out and "(2 at a time)" in out
    written = runner._sections_on_disk()
    assert set(written) == {"fast", "other", "bad"}
    assert "last good rows" in written["bad"]  # a failed rerun keeps what was measured
    pids = {name: written[name].strip().splitlines()[-1] for name in ("fast", "other")}
    assert all(str(os.getpid()) not in row for row in pids.values()), pids


@pytest.mark.skipif(sys.platform == "win32", reason="no fork server on Windows")
def test_workers_start_with_tensorflow_imported_and_never_tfmot():
    import concurrent.futures

    context = run._worker_context()
    assert context.get_start_method() == "forkserver"
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(modules_seen).result() == (True, False)


def test_sections_are_imported_only_where_they_run():
    # A --jobs worker re-imports run.py: it must not import every section's module.
    code = (
        "import sys; sys.argv = ['run.py']; from benchmarks import run; "
        "print(sorted(m for m in sys.modules if m.startswith('benchmarks.')))"
    )
    root = pathlib.Path(run.__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.split("\n")[0] == "['benchmarks.common', 'benchmarks.run']"
    assert set(run.SECTIONS.values()) <= {p.stem for p in root.joinpath("benchmarks").glob("*.py")}
    assert run._section("harness").__module__ == "benchmarks.harness"
    assert run._section(fast_section) is fast_section


def test_cpu_names_the_model_and_its_instruction_sets():
    model, _, found = common.cpu().partition(": ")
    assert model and found
    if found.startswith("none of "):
        return
    assert set(found.split()) <= set(common._SIMD)
    info = pathlib.Path("/proc/cpuinfo")
    cpuinfo = info.read_text() if info.exists() else ""
    assert all(f" {f}" in cpuinfo for f in found.split())  # each one read from the host
