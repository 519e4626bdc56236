"""Runs the benchmarks, prints the tables and writes benchmarks/RESULTS.md.

python benchmarks/run.py            # every section
python benchmarks/run.py ptq        # one section
"""

from __future__ import annotations

import datetime
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import bridge, channels, clustering, common, edgetpu, harness, pruning, ptq

SECTIONS = {
    "ptq": ptq.run,
    "bridge": bridge.run,
    "pruning": pruning.run,
    "clustering": clustering.run,
    "harness": harness.run,
    "channels": channels.run,
    "edgetpu": edgetpu.run,
}
RESULTS = pathlib.Path(__file__).resolve().parent / "RESULTS.md"


def main(argv: list[str]) -> int:
    chosen = argv[1:] or list(SECTIONS)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    blocks = []
    for name in chosen:
        start = time.perf_counter()
        tables = SECTIONS[name]()
        seconds = time.perf_counter() - start
        for table in tables:
            print(table.text(), end="\n\n", flush=True)
        blocks.append((name, seconds, tables))
    header = [
        "# keras_squeeze benchmark results",
        "",
        f"Measured {datetime.date.today().isoformat()} on {common.machine()}, "
        f"{os.cpu_count()} cores (shared machine: latency figures are ratios measured side by "
        "side in one run). Regenerate with `make bench`.",
        "",
    ]
    body = []
    for name, seconds, tables in blocks:
        body.append(f"## {name} ({seconds:.0f} s)\n")
        body += [t.markdown() for t in tables]
    RESULTS.write_text("\n".join(header + body))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
