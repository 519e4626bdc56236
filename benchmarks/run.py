"""Runs the benchmarks, prints the tables and writes benchmarks/RESULTS.md.

python benchmarks/run.py            # every section
python benchmarks/run.py ptq        # one section
python benchmarks/run.py --quick    # every section at reduced sizes, to RESULTS.quick.md
"""

from __future__ import annotations

import datetime
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "--quick" in sys.argv:  # read by benchmarks.common at import
    os.environ["KS_BENCH_QUICK"] = "1"

from benchmarks import (
    auto_search,
    bridge,
    channels,
    cli,
    clustering,
    common,
    cost,
    depth,
    distill_recovery,
    distill_sweep,
    distillation,
    distributed,
    edgetpu,
    families,
    harness,
    mixed,
    outputs,
    pruning,
    ptq,
    qat,
    robustness,
    sensitivity,
    significance,
    subclassed,
)

SECTIONS = {
    "ptq": ptq.run,
    "bridge": bridge.run,
    "pruning": pruning.run,
    "qat": qat.run,
    "clustering": clustering.run,
    "distillation": distillation.run,
    "distill_sweep": distill_sweep.run,
    "distill_recovery": distill_recovery.run,
    "harness": harness.run,
    "channels": channels.run,
    "depth": depth.run,
    "edgetpu": edgetpu.run,
    "cli": cli.run,
    "subclassed": subclassed.run,
    "robustness": robustness.run,
    "outputs": outputs.run,
    "families": families.run,
    "significance": significance.run,
    "distributed": distributed.run,
    "sensitivity": sensitivity.run,
    "mixed": mixed.run,
    "auto": auto_search.run,
    "cost": cost.run,
}
RESULTS = pathlib.Path(__file__).resolve().parent / (
    "RESULTS.quick.md" if common.QUICK else "RESULTS.md"
)


def _sections_on_disk() -> dict[str, str]:
    """The sections RESULTS.md holds now, by name (runs of one section keep the rest)."""
    if not RESULTS.exists():
        return {}
    found, name = {}, None
    for line in RESULTS.read_text().splitlines(keepends=True):
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


def main(argv: list[str]) -> int:
    chosen = [a for a in argv[1:] if a != "--quick"] or list(SECTIONS)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    for name in chosen:
        start = time.perf_counter()
        tables = SECTIONS[name]()
        seconds = time.perf_counter() - start
        for table in tables:
            print(table.text(), end="\n\n", flush=True)
        when = datetime.date.today().isoformat()
        body = [f"## {name} ({seconds:.0f} s, measured {when})\n"] + [t.markdown() for t in tables]
        # Re-read before writing: after every section, so a later failure keeps what was
        # measured, and runs of other sections in parallel keep theirs.
        sections = _sections_on_disk()
        sections[name] = "\n".join(body)
        _write(sections)
        print(f"wrote section {name!r} to {RESULTS}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
