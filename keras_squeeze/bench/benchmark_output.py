"""Parses the text TFLite's benchmark_model prints, across the versions in use.

Handled (see tests/bench/data for recorded examples):

- lines with or without log prefixes ("INFO: ", "VERBOSE: ", logcat's
  "05-31 10:31:13.022 21767 21767 I tflite  : ");
- run statistics, in microseconds: "count=50 first=.. curr=.. min=.. max=..
  avg=.. std=.." with "p5=.. median=.. p95=.." in newer versions, and
  "count=1 curr=.." when all runs took the same time; numbers such as
  "1.24027e+06";
- the summary "Inference timings in us: Init: .., First inference: ..,
  Warmup (avg): .., Inference (avg): .." and the 2019 form "Average inference
  timings in us: Warmup: .., Init: .., Inference: ..";
- memory: "Memory footprint delta from the start of the tool (MB): init=..
  overall=..", its older wording "Peak memory footprint (MB): init=..
  overall=..", and "Overall peak memory footprint (MB) via periodic
  monitoring: .." (--report_peak_memory_footprint);
- the op profile of the regular runs (--enable_op_profiling): the "Run Order"
  table, with or without a [start] column, tab- or space-aligned.
"""

from __future__ import annotations

import dataclasses
import re

from keras_squeeze.bench.results import OpTiming

# Unambiguous (one way to match a digit run): damaged lines cannot make the patterns backtrack.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
_PREFIX = re.compile(
    r"^\s*(?:\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+[VDIWEF]\s[^:]*:\s)?"
    r"(?:(?:INFO|WARN|WARNING|ERROR|VERBOSE|DEBUG):\s*)?"
)
_STAT = re.compile(rf"^count=(\d{{1,18}})((?:\s+\w+=(?:{_NUMBER}))*)(\(all same\))?\s*$")
_KV = re.compile(rf"(\w+)=({_NUMBER})")
_RUN_HEADER = re.compile(r"^Running benchmark for at least")
_SUMMARY = re.compile(r"^(?:Average )?[Ii]nference timings in us:\s*(.*)$")
_MEM_DELTA = re.compile(
    rf"^(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): "
    rf"init=({_NUMBER}) overall=({_NUMBER})"
)
_MEM_PEAK = re.compile(
    rf"^Overall peak memory footprint \(MB\) via periodic monitoring: ({_NUMBER})"
)
_MODEL_SIZE = re.compile(rf"^The input model file size \(MB\): ({_NUMBER})")
_NAME = re.compile(r"^\[(?P<tensors>.*)\](?::(?P<index>\d{1,18}))?$")
_INDEXED = re.compile(r"^(?P<label>.*?)[:/](?P<index>\d{1,18})$")


def strip_prefix(line: str) -> str:
    """The line without log-level or logcat prefixes and surrounding blanks."""
    return _PREFIX.sub("", line, count=1).strip()


@dataclasses.dataclass(frozen=True)
class RunStat:
    """One "count=.." line: benchmark_model's statistics of a run phase, in microseconds."""

    count: int
    first_us: float | None
    curr_us: float | None
    min_us: float | None
    max_us: float | None
    avg_us: float | None
    std_us: float | None
    percentiles_us: dict[int, float]


def parse_stat(line: str) -> RunStat | None:
    """A RunStat from one (prefix-stripped) line, or None if it is not a stat line.

    Example:
        >>> parse_stat("count=1 curr=905463").avg_us
        905463.0
    """
    m = _STAT.match(line)
    if not m:
        return None
    values = {k: float(v) for k, v in _KV.findall(m.group(2))}
    count = int(m.group(1))
    percentiles = {}
    for key, q in (("p5", 5), ("median", 50), ("p95", 95)):
        if key in values:
            percentiles[q] = values[key]
    all_same = "first" not in values and "curr" in values
    curr = values.get("curr")
    return RunStat(
        count=count,
        first_us=values.get("first", curr if all_same else None),
        curr_us=curr,
        min_us=values.get("min", curr if all_same else None),
        max_us=values.get("max", curr if all_same else None),
        avg_us=values.get("avg", curr if all_same else None),
        std_us=values.get("std", 0.0 if all_same else None),
        percentiles_us=percentiles,
    )


def parse_summary(text: str) -> dict[str, float]:
    """{"init", "first", "warmup_avg", "inference_avg"} (us) from the timings summary."""
    keys = {
        "init": "init",
        "first inference": "first",
        "warmup (avg)": "warmup_avg",
        "warmup": "warmup_avg",
        "inference (avg)": "inference_avg",
        "inference": "inference_avg",
        "no stats": "inference_avg",
    }
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition(":")
        key = key.strip().lower()
        if sep and key in keys and re.fullmatch(_NUMBER, value.strip()):
            out[keys[key]] = float(value.strip())
    return out


@dataclasses.dataclass
class BenchmarkModelOutput:
    """What one benchmark_model run reported. Times in microseconds, memory in MB.

    Attributes:
        warmup, inference: the stat lines of the warm-up and regular phases.
        init_us, first_inference_us, warmup_avg_us, inference_avg_us: the summary.
        memory_init_mb, memory_overall_mb: the footprint delta line.
        peak_memory_mb: the periodic-monitoring peak, if reported.
        memory_line: the memory line as printed (its wording says what it is).
        op_profile: the regular runs' Run Order table.
        errors: "ERROR:" lines and failure lines ("Benchmarking failed.").
        delegate_lines: what the tool said about delegates.
    """

    warmup: RunStat | None = None
    inference: RunStat | None = None
    init_us: float | None = None
    first_inference_us: float | None = None
    warmup_avg_us: float | None = None
    inference_avg_us: float | None = None
    model_size_mb: float | None = None
    memory_init_mb: float | None = None
    memory_overall_mb: float | None = None
    peak_memory_mb: float | None = None
    memory_line: str | None = None
    op_profile: list[OpTiming] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    delegate_lines: list[str] = dataclasses.field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any("failed" in e.lower() for e in self.errors) or (
            self.inference is None and self.inference_avg_us is None
        )


def parse_output(text: str) -> BenchmarkModelOutput:
    """Reads everything parse-able from benchmark_model's output (stdout + stderr)."""
    out = BenchmarkModelOutput()
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [strip_prefix(ln) for ln in raw_lines]
    phases: list[str] = []
    pending = None
    loose_stats: list[RunStat] = []
    in_profile = False
    for raw, line in zip(raw_lines, lines, strict=True):
        if "Profiling Info for" in line or "====" in line:
            in_profile = True
        if _RUN_HEADER.match(line):
            pending = "warmup" if not phases else "inference"
            phases.append(pending)
            in_profile = False
            continue
        stat = None if in_profile or line.startswith("Timings") else parse_stat(line)
        if stat is not None:
            if pending is not None:
                setattr(out, pending, stat)
                pending = None
            else:
                loose_stats.append(stat)
            continue
        if m := _SUMMARY.match(line):
            summary = parse_summary(m.group(1))
            out.init_us = summary.get("init")
            out.first_inference_us = summary.get("first")
            out.warmup_avg_us = summary.get("warmup_avg")
            out.inference_avg_us = summary.get("inference_avg")
        elif m := _MEM_DELTA.match(line):
            out.memory_init_mb, out.memory_overall_mb = float(m.group(1)), float(m.group(2))
            out.memory_line = line
        elif m := _MEM_PEAK.match(line):
            out.peak_memory_mb = float(m.group(1))
            out.memory_line = line
        elif m := _MODEL_SIZE.match(line):
            out.model_size_mb = float(m.group(1))
        elif raw.lstrip().startswith("ERROR") or line.endswith("failed.") or "Failed to" in line:
            out.errors.append(line)
        elif "delegate" in line.lower() and not in_profile:
            out.delegate_lines.append(line)
    if out.inference is None and loose_stats:
        # Excerpts without the "Running benchmark" headers: the last stat is the regular one.
        out.inference = loose_stats[-1]
    out.op_profile = parse_op_profile(lines)
    return out


def _table_start(lines: list[str]) -> int | None:
    """Index of the regular runs' "Run Order" banner (or the only one, in old outputs)."""
    regular = [i for i, ln in enumerate(lines) if "Profiling Info for Regular Benchmark" in ln]
    start = regular[-1] if regular else 0
    if not regular and any("Profiling Info for Benchmark Initialization" in ln for ln in lines):
        return None
    for i in range(start, len(lines)):
        if "Run Order" in lines[i] and "====" in lines[i]:
            return i
    return None


def _row_pattern(header: str) -> tuple[re.Pattern, list[str]]:
    columns = re.findall(r"\[([^\]]+)\]", header)
    leading = columns[1 : columns.index("%")] if "%" in columns else ["first", "avg ms"]
    numbers = r"\s+".join(rf"(?P<c{i}>{_NUMBER})" for i in range(len(leading)))
    return re.compile(
        # The type ends in a non-blank and the name is greedy up to its last non-blank:
        # runs of blanks have one way to match, so a damaged line is read in linear time.
        rf"^(?P<type>.*?\S)\s+{numbers}\s+(?P<pct>{_NUMBER})%\s+(?P<cdf>{_NUMBER})%"
        rf"\s+(?P<mem>{_NUMBER})\s+(?P<called>\d{{1,18}})\s+(?P<name>(?:.*\S)?)\s*$"
    ), leading


def split_name(name: str) -> tuple[list[str], int | None]:
    """(output tensor names, node index) from a profile row's [Name] cell.

    Example:
        >>> split_name("[model/conv/Relu;model/conv/BiasAdd, Identity]:12")
        (['model/conv/Relu;model/conv/BiasAdd', 'Identity'], 12)
    """
    m = _NAME.match(name)
    if m:
        tensors = [t.strip() for t in m.group("tensors").split(", ") if t.strip()]
        index = m.group("index")
        return tensors, int(index) if index is not None else None
    m = _INDEXED.match(name)
    if m:
        return [], int(m.group("index"))
    return [], None


def parse_op_profile(lines: list[str]) -> list[OpTiming]:
    """The regular runs' Run Order table as OpTiming rows (prefix-stripped lines)."""
    start = _table_start(lines)
    if start is None or start + 1 >= len(lines):
        return []
    pattern, leading = _row_pattern(lines[start + 1])
    first_col = leading.index("first") if "first" in leading else 0
    avg_col = leading.index("avg ms") if "avg ms" in leading else len(leading) - 1
    rows = []
    for line in lines[start + 2 :]:
        if not line or "====" in line:
            break
        m = pattern.match(line)
        if not m:
            continue
        tensors, index = split_name(m.group("name"))
        rows.append(
            OpTiming(
                node_type=m.group("type").strip(),
                first_ms=float(m.group(f"c{first_col}")),
                avg_ms=float(m.group(f"c{avg_col}")),
                percent=float(m.group("pct")),
                times_called=int(m.group("called")),
                name=m.group("name"),
                tensors=tensors,
                node_index=index,
            )
        )
    return rows
