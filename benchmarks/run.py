"""Runs the benchmarks, prints the tables and writes benchmarks/RESULTS.md.

python benchmarks/run.py            # every section
python benchmarks/run.py ptq        # one section
python benchmarks/run.py --quick    # every section at reduced sizes, to RESULTS.quick.md
python benchmarks/run.py --jobs=2   # two sections at a time, each in a process of its own

--jobs=N runs N sections side by side (default 1, or 2 with --quick), the longest
first by the times the results file records. Each runs in a fresh process, so no
section sees another's imports (tfmot flips tf.keras for its process; the workers are
forked from a server that has imported only tensorflow and keras); sections that
time things then share the machine with the others, so full runs that report latency
or wall-time ratios are best run with the default --jobs=1.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import importlib
import multiprocessing
import os
import pathlib
import re
import sys
import time
import traceback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "--quick" in sys.argv:  # read by benchmarks.common at import
    os.environ["KS_BENCH_QUICK"] = "1"

from benchmarks import common

# Each section's module under benchmarks/, imported only by the process that runs it (a
# --jobs worker re-imports this file; all 22 modules took 4.5 s here, one 4.0 s).
SECTIONS = {
    "ptq": "ptq",
    "bridge": "bridge",
    "pruning": "pruning",
    "qat": "qat",
    "distillation": "distillation",
    "distill_sweep": "distill_sweep",
    "distill_recovery": "distill_recovery",
    "harness": "harness",
    "channels": "channels",
    "depth": "depth",
    "edgetpu": "edgetpu",
    "cli": "cli",
    "subclassed": "subclassed",
    "robustness": "robustness",
    "outputs": "outputs",
    "families": "families",
    "significance": "significance",
    "distributed": "distributed",
    "sensitivity": "sensitivity",
    "mixed": "mixed",
    "auto": "auto_search",
    "cost": "cost",
}
FULL_RESULTS = pathlib.Path(__file__).resolve().parent / "RESULTS.md"
RESULTS = FULL_RESULTS.with_name("RESULTS.quick.md") if common.QUICK else FULL_RESULTS


def _sections_on_disk(path: pathlib.Path | None = None) -> dict[str, str]:
    """The sections a results file (RESULTS) holds now, by name (runs of one section keep
    the rest)."""
    path = path or RESULTS
    if not path.exists():
        return {}
    found, name = {}, None
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("## "):
            name = line[3:].split(" ", 1)[0]
            found[name] = ""
        if name is not None:
            found[name] += line
    return found


def _write(sections: dict[str, str]) -> None:
    header = [
        "# keras_squeeze benchmark results" + (" (--quick: reduced sizes)" if common.QUICK else ""),
        "",
        f"Last run {datetime.date.today().isoformat()} on {common.machine()}, "
        f"{os.cpu_count()} cores (shared machine: latency figures are ratios measured side by "
        "side in one run). Regenerate with `make bench`, or one section with "
        "`python benchmarks/run.py <section>`.",
        "",
    ]
    ordered = [sections[n].rstrip("\n") + "\n" for n in SECTIONS if n in sections]
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text("\n".join(header) + "\n" + "\n".join(ordered))
    tmp.replace(RESULTS)


def _jobs(flags: list[str]) -> int:
    """The --jobs=N of the command line: default 1, or 2 with --quick."""
    value = next((f.split("=", 1)[1] for f in flags if f.startswith("--jobs=")), None)
    if value is None:
        return 2 if common.QUICK else 1
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"--jobs must be a positive integer. Received: --jobs={value}")
    return int(value)


def _recorded_seconds(path: pathlib.Path | None = None) -> dict[str, float]:
    """Each section's wall time as a results file (RESULTS) records it ("## name (N s, ...")."""
    times = {}
    for name, text in _sections_on_disk(path).items():
        match = re.match(rf"## {re.escape(name)} \((\d+) s", text)
        if match:
            times[name] = float(match.group(1))
    return times


def _longest_first(names: list[str]) -> list[str]:
    """`names` by recorded time, longest first; sections never timed go first.

    A --quick run whose RESULTS.quick.md lacks some of them (a fresh clone has none: the
    file is not committed) orders by the full run's times in RESULTS.md instead, one scale
    for all: the order is nearly the same (on 2026-12-04, 22 sections at 2 jobs scheduled
    by either came to 620 and 622 s).
    """
    times = _recorded_seconds()
    if RESULTS != FULL_RESULTS and not all(n in times for n in names):
        times = _recorded_seconds(FULL_RESULTS)
    return sorted(names, key=lambda n: -times.get(n, float("inf")))


def _section(entry):
    """A SECTIONS entry's run function: a module name under benchmarks/, or a callable."""
    if callable(entry):
        return entry
    return importlib.import_module(f"benchmarks.{entry}").run


def _timed(name: str, entry) -> tuple[str, float, list]:
    """Runs one section; returns its name, wall seconds (imports left out) and tables
    (runs in a worker)."""
    section = _section(entry)
    start = time.perf_counter()
    tables = section()
    return name, time.perf_counter() - start, tables


def _record(name: str, seconds: float, tables: list) -> None:
    for table in tables:
        print(table.text(), end="\n\n", flush=True)
    when = datetime.date.today().isoformat()
    header = f"## {name} ({seconds:.0f} s, measured {when} on {common.cpu()})\n"
    body = [header] + [t.markdown() for t in tables]
    # Re-read before writing: after every section, so a later failure keeps what was
    # measured, and runs of other sections in another command keep theirs.
    sections = _sections_on_disk()
    sections[name] = "\n".join(body)
    _write(sections)
    print(f"wrote section {name!r} to {RESULTS}", flush=True)


# What a section's worker has imported before it starts: tensorflow and keras take about
# 4 s to import, which a worker forked from a server that has imported them skips (0.6 s
# here). Nothing else is preloaded: no model, no TF runtime state, and not tfmot, which
# flips tf.keras for its process.
PRELOAD = ("tensorflow", "keras")


def _worker_context():
    """Workers forked from a server that imported PRELOAD; spawned (fresh interpreters)
    where the platform has no fork server."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def _results(chosen: list[str], jobs: int):
    """Yields (name, seconds, tables or the failure's traceback) as sections finish."""
    if jobs == 1:
        for name in chosen:
            try:
                yield _timed(name, SECTIONS[name])
            except Exception:  # reported by main; the other sections go on
                yield name, 0.0, traceback.format_exc()
        return
    context = _worker_context()
    # One section per worker process: a worker kept for the next section would hand it
    # this one's imports (tfmot's tf.keras flip) and memory high-water mark.
    with concurrent.futures.ProcessPoolExecutor(
        jobs, mp_context=context, max_tasks_per_child=1
    ) as pool:
        futures = {
            pool.submit(_timed, name, SECTIONS[name]): name for name in _longest_first(chosen)
        }
        for future in concurrent.futures.as_completed(futures):
            try:
                yield future.result()
            except Exception:  # reported by main; the other sections go on
                yield futures[future], 0.0, traceback.format_exc()


def main(argv: list[str]) -> int:
    flags = [a for a in argv[1:] if a.startswith("--")]
    unknown_flags = [f for f in flags if f != "--quick" and not f.startswith("--jobs=")]
    if unknown_flags:
        print(f"unknown flag(s) {unknown_flags}; use --quick and --jobs=N", file=sys.stderr)
        return 2
    jobs = _jobs(flags)
    chosen = [a for a in argv[1:] if not a.startswith("--")] or list(SECTIONS)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    took, failed = {}, []
    for name, seconds, tables in _results(chosen, min(jobs, len(chosen))):
        if isinstance(tables, str):
            print(f"section {name!r} failed:\n{tables}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        took[name] = seconds
        _record(name, seconds, tables)
    slowest = ", ".join(f"{n} {s:.0f} s" for n, s in sorted(took.items(), key=lambda i: -i[1])[:3])
    print(
        f"{len(took)} section(s) in {time.perf_counter() - start:.0f} s "
        f"({min(jobs, len(chosen))} at a time); slowest: {slowest or 'none'}",
        flush=True,
    )
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
