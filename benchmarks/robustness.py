"""Robustness figures (issue: damaged and hostile inputs), the fuzz suite's longer run.

- Damaged files per reader: the strategies of tests/fuzz (truncations, flipped
  bits, random and spliced bytes, valid headers with garbage, impossible sizes
  and indices, cut vtables, damaged text), many more cases than CI's budget.
  Each case ends as "read", "KerasSqueezeError", "raw exception", "crash" (the
  worker process died), "hang" (past the time bound) or "partial output".
  A refusal must also be one line that names the input and says what was
  expected ("message rule broken" counts those that are not).
- Random model graphs per recipe: tests/fuzz/graphs specs through every
  post-training recipe and one training recipe each (1 epoch of 2 steps), for
  about an hour: "verified" (a .tflite saved and checked), "KerasSqueezeError",
  "raw exception", "crash", "hang", "partial output", "mutated model".

Cases run in worker processes (`python -m benchmarks.robustness worker ...`)
that report each case as it starts and ends: a worker that dies mid-case is a
crash, one that stops reporting past the bound is a hang; a new worker goes
on with the rest (seed + restarts). Everything is drawn by hypothesis from
the recorded seed.

KS_ROBUSTNESS_GRAPH_SECONDS bounds the graph campaign (KS_ROBUSTNESS_GRAPHS_END=HH:MM,
UTC, ends it at that time if sooner). KS_ROBUSTNESS_RECIPES=prune,qat runs only
those recipes on the graphs (the same graphs are drawn from the seed; a graph
whose drawn training recipe is not listed and no listed post-training recipe
is skipped), to chase one recipe's failures; `python -m benchmarks.robustness
graphs` runs the graph campaign alone and prints its tables without writing
RESULTS.md.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

from benchmarks.common import QUICK, Table

# The recorded seed; KS_ROBUSTNESS_SEED draws other cases (e.g. a further graph run).
SEED = int(os.environ.get("KS_ROBUSTNESS_SEED", 20261202))
ROOT = pathlib.Path(__file__).resolve().parent.parent
# Cases per reader: more than 10,000 in all.
FILE_CASES = {
    "read_tflite (bytes)": 2000,
    "check_edgetpu (bytes)": 1500,
    "edgetpu_readiness (bytes)": 500,
    "check_edgetpu / resolve_models (path)": 600,
    "probe_tflite (child process)": 500,
    "ks.benchmark (file)": 200,
    "parse_compiler_log": 1000,
    "parse_output (benchmark_model)": 1000,
    "compile_for_edgetpu (fake compiler)": 100,
    "ks.load_model (.keras/.h5/SavedModel)": 600,
    "load_npz": 800,
    "load_image_folder": 150,
    "flag files (3 scripts)": 1200,
}
GRAPH_SECONDS = float(os.environ.get("KS_ROBUSTNESS_GRAPH_SECONDS", 20 if QUICK else 3600))
# A quick look (e.g. 0.01) before the full run; the section is written at 1. --quick:
# 0.002, a case or a few per reader (each reader's worker costs more than its cases).
SCALE = float(os.environ.get("KS_ROBUSTNESS_SCALE", 0.002 if QUICK else 1))
# An upper bound: the campaign stops after GRAPH_SECONDS. --quick: one graph; past the
# deadline the worker would still draw (and skip) the rest, about 7 s of hypothesis.
MAX_GRAPHS = 1 if QUICK else 2000
# Or at this UTC time of day ("HH:MM"), if sooner: a run that must end by a given time.
GRAPHS_END = os.environ.get("KS_ROBUSTNESS_GRAPHS_END", "")
CASE_BOUND_S = 600.0
GRAPH_BOUND_S = 1800.0
# The recipes graphs go through (None: all); comma-separated names.
RECIPES = (
    tuple(r.strip() for r in os.environ.get("KS_ROBUSTNESS_RECIPES", "").split(",") if r.strip())
    or None
)
KIND_COLUMNS = ("read", "KerasSqueezeError", "raw exception", "crash", "hang", "partial output")


# What earlier runs of the graph campaign found, and what became of it (kept in the table).
FOUND_BEFORE = (
    "found by earlier runs (2026-12-02, seed 20261202): 11 worker crashes (SIGABRT) in 'int8' "
    "and 'qat', graphs with a LayerNormalization over an axis of size 1, whose integer ADD was "
    "calibrated to a constant output (a rescaling multiplier of 50 where LiteRT's kernel "
    "asserts < 1): such files are refused since with an ExportError before any interpreter "
    "loads them (tests/export/test_loadable.py)",
    "and 2 raw exceptions in 'prune' (tfmot's ValueError \"factorized_pool() accepts tensors "
    "of rank 2 only\" inside tf_keras' train_function): the preset's 4x1 blocks on a one-unit "
    "Dense head (1548x1, 7182x1 kernels), which tfmot squeezes to rank 1; blocks now apply only "
    "where tfmot can prune in them, other kernels are pruned per weight with a note "
    "(tests/fuzz/test_graph_regressions.py pins both graphs)",
)


# --- the worker side -----------------------------------------------------------


def _reader_cases(reader: str, workdir: pathlib.Path):
    """(strategy, run(case) -> Outcome) of one reader."""
    from hypothesis import strategies as st

    import keras_squeeze as ks
    from keras_squeeze.bench.benchmark_output import parse_output
    from keras_squeeze.bench.sources import resolve_models
    from keras_squeeze.edgetpu import check_edgetpu, edgetpu_readiness, parse_compiler_log
    from keras_squeeze.report.tflite_reader import read_tflite
    from keras_squeeze.safety.probe import probe_tflite
    from tests.fuzz import cases
    from tests.fuzz import test_data_sources as data_fuzz
    from tests.fuzz import test_flag_files as flag_fuzz
    from tests.fuzz import test_logs as log_fuzz
    from tests.fuzz import test_model_files as model_fuzz
    from tests.fuzz.strategies import SMALL_TFLITE, damaged, damaged_tflite

    bytes_names = ["The data", "The .tflite to check", "The model", "The .tflite"]

    def checked(outcome, names):
        found = cases.problems(outcome, names)
        if outcome.kind == cases.REFUSED and found:
            outcome.message = "RULE: " + "; ".join(found)
        return outcome

    def tmp_file(name, content):
        path = pathlib.Path(tempfile.mkdtemp(dir=workdir)) / name
        path.write_bytes(content)
        return path

    if reader == "read_tflite (bytes)":
        return damaged_tflite(), lambda c: checked(cases.run_case(read_tflite, c), bytes_names)
    if reader == "check_edgetpu (bytes)":
        return damaged_tflite(), lambda c: checked(cases.run_case(check_edgetpu, c), bytes_names)
    if reader == "edgetpu_readiness (bytes)":
        return damaged_tflite(), lambda c: checked(
            cases.run_case(edgetpu_readiness, c), bytes_names
        )
    if reader == "check_edgetpu / resolve_models (path)":

        def on_path(c):
            path = tmp_file("model.tflite", c)
            outcome = checked(cases.run_case(check_edgetpu, path), [path])
            if outcome.kind in (cases.READ, cases.REFUSED):
                outcome = checked(cases.run_case(resolve_models, path), [path])
            return outcome

        return damaged_tflite(), on_path
    if reader == "probe_tflite (child process)":
        return damaged_tflite(SMALL_TFLITE), lambda c: checked(
            cases.run_case(probe_tflite, c, "'probe.tflite'", bound=CASE_BOUND_S),
            ["'probe.tflite'"],
        )
    if reader == "ks.benchmark (file)":

        def bench(c):
            path = tmp_file("damaged.tflite", c)
            run = dict(warmup_runs=0, min_runs=1, min_seconds=0, max_seconds=5)
            outcome = cases.run_case(
                ks.benchmark, path, measure_memory=False, bound=CASE_BOUND_S, **run
            )
            return checked(outcome, [path, "'damaged'"])

        return damaged_tflite(SMALL_TFLITE), bench
    if reader == "parse_compiler_log":
        return log_fuzz.logs(cases.EDGETPU_LOGS), lambda t: cases.run_case(parse_compiler_log, t)
    if reader == "parse_output (benchmark_model)":
        return log_fuzz.logs(cases.BENCHMARK_LOGS), lambda t: cases.run_case(parse_output, t)
    if reader == "compile_for_edgetpu (fake compiler)":
        strategy = st.tuples(
            st.one_of(st.binary(max_size=2000), log_fuzz.logs(cases.EDGETPU_LOGS).map(str.encode)),
            st.sampled_from([0, 0, 1, 2, 139]),
            st.one_of(st.none(), damaged(cases.reference_tflite("small_cnn_int8.tflite"))),
        )

        def compile_case(c):
            folder = pathlib.Path(tempfile.mkdtemp(dir=workdir))
            exe = log_fuzz._fake_compiler(folder, *c)
            target = folder / "out" / "model_edgetpu.tflite"
            outcome = checked(cases.run_case(log_fuzz.compile_once, exe, target), [exe.name])
            if (
                outcome.kind != cases.READ
                and target.parent.exists()
                and any(target.parent.iterdir())
            ):
                outcome = cases.Outcome(cases.PARTIAL, f"left {list(target.parent.iterdir())}")
            return outcome

        return strategy, compile_case
    if reader == "ks.load_model (.keras/.h5/SavedModel)":
        # Outside workdir, which is emptied after every case.
        keep = pathlib.Path(tempfile.mkdtemp(prefix="keras_squeeze-robustness-models-"))
        reference = model_fuzz.write_reference_models(keep)

        @st.composite
        def model_cases(draw):
            return draw(model_fuzz.damaged_model_file(reference))

        def load(c):
            _, write = c
            path = write(pathlib.Path(tempfile.mkdtemp(dir=workdir)))
            return checked(cases.run_case(ks.load_model, path, bound=CASE_BOUND_S), [path])

        return model_cases(), load
    if reader == "load_npz":
        return data_fuzz.npz_files(), lambda c: checked(
            cases.run_case(data_fuzz._load_npz, tmp_file("data.npz", c)), []
        )
    if reader == "load_image_folder":

        def folder_case(c):
            folder, channels = c
            root = pathlib.Path(tempfile.mkdtemp(dir=workdir)) / "images"
            data_fuzz.write_folder(root, folder)
            return checked(
                cases.run_case(data_fuzz._read_folder, root, channels, bound=CASE_BOUND_S), [root]
            )

        return st.tuples(data_fuzz.image_folders(), st.sampled_from([1, 3, 4])), folder_case
    if reader == "flag files (3 scripts)":
        from keras_squeeze.cli import bench as bench_script
        from keras_squeeze.cli import compress, export

        scripts = {"compress": compress, "export": export, "bench": bench_script}

        @st.composite
        def flag_cases(draw):
            name = draw(st.sampled_from(sorted(scripts)))
            return name, draw(flag_fuzz.flag_files(scripts[name]))

        def parse(c):
            name, content = c
            return cases.run_case(flag_fuzz.check, scripts[name], tmp_file("job.flags", content))

        return flag_cases(), parse
    raise KeyError(reader)


def _error_line(message: str) -> str:
    """The error's own line in a message: its last "...Error: ..." line (tf_keras follows
    it with the layer's call arguments), else its last line."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()] or [""]
    found = [ln for ln in lines if re.match(r"[\w.]*(Error|Exception)\b[^:]*:", ln)]
    return (found or lines)[-1]


def _clip(message: str, keep: int = 300) -> str:
    """A message's head and the error's own line (`_error_line`), when it is long."""
    if len(message) <= 2 * keep:
        return message
    return f"{message[:keep]} ... {_error_line(message)[:keep]}"


def _emit(stream, **record) -> None:
    stream.write(json.dumps(record) + "\n")
    stream.flush()


def _worker(campaign: str, name: str, seed: int, count: int, results: str) -> int:
    import shutil
    import warnings

    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    warnings.filterwarnings("ignore")
    from tests.fuzz import cases, graphs

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="keras_squeeze-robustness-"))
    stream = open(results, "a")  # noqa: SIM115 (kept open for the worker's life)
    index = [0]
    deadline = time.monotonic() + GRAPH_SECONDS if campaign == "graphs" else None
    if campaign == "files":
        strategy, run_one = _reader_cases(name, workdir)
    else:
        strategy = st.tuples(
            graphs.graph_specs(min_nodes=2),
            st.sampled_from(graphs.TRAINING_RECIPES),
            st.sampled_from([None, False]),
        )

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def campaign_case(case):
        if deadline is not None and time.monotonic() > deadline:
            return
        if campaign == "graphs":
            chosen = [r for r in (*graphs.PTQ_RECIPES, case[1]) if RECIPES is None or r in RECIPES]
            if not chosen:
                return
        i = index[0]
        index[0] += 1
        if campaign == "files":
            _emit(stream, i=i, event="start")
        else:  # the spec first: a graph that kills the worker can be rebuilt from the log
            _emit(stream, i=i, event="start", spec=graphs.spec_source(case[0]), case=repr(case[1:]))
        if campaign == "files":
            outcome = run_one(case)
            _emit(stream, i=i, kind=outcome.kind, message=_clip(outcome.message))
        else:
            spec, _, distill = case
            kinds = {}
            for recipe in chosen:
                folder = pathlib.Path(tempfile.mkdtemp(dir=workdir))
                outcome = graphs.run_recipe(spec, recipe, folder, distill=distill)
                if outcome.kind == cases.REFUSED and cases.problems(outcome):
                    outcome.message = "RULE: " + "; ".join(cases.problems(outcome))
                kinds[recipe] = [outcome.kind, _clip(outcome.message)]
                shutil.rmtree(folder, ignore_errors=True)
            _emit(stream, i=i, kind="graph", recipes=kinds, spec=graphs.spec_source(spec))
        for leftover in workdir.iterdir():
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()

    campaign_case()
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


# --- the measuring side ----------------------------------------------------------


def _graph_seconds() -> float:
    """GRAPH_SECONDS, or the time left until GRAPHS_END if that is sooner."""
    if not GRAPHS_END:
        return GRAPH_SECONDS
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    hour, minute = (int(v) for v in GRAPHS_END.split(":"))
    end = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return max(0.0, min(GRAPH_SECONDS, (end - now).total_seconds()))


def _campaign(campaign: str, name: str, count: int, bound: float, log) -> list[dict]:
    """Runs `count` cases in workers; a worker's death or silence is that case's crash / hang."""
    seconds = _graph_seconds() if campaign == "graphs" else GRAPH_SECONDS
    records: list[dict] = []
    restarts = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="keras_squeeze-robustness-") as tmp:
        while len(records) < count:
            if campaign == "graphs" and time.monotonic() - started > seconds:
                break
            results = pathlib.Path(tmp) / f"results_{restarts}.jsonl"
            results.touch()
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.robustness",
                "worker",
                campaign,
                name,
                str(SEED + restarts),
                str(count - len(records)),
                str(results),
            ]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
            left = seconds - (time.monotonic() - started)
            env["KS_ROBUSTNESS_GRAPH_SECONDS"] = str(max(left, 0.0))  # a restarted worker
            # stderr to a file: a pipe nobody reads fills up with TensorFlow's logs and
            # blocks the worker.
            errors = pathlib.Path(tmp) / f"stderr_{restarts}.txt"
            with open(errors, "wb") as err:
                proc = subprocess.Popen(
                    cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err
                )
            last, seen = time.monotonic(), 0
            while proc.poll() is None:
                time.sleep(1.0)
                lines = results.read_text().splitlines()
                if len(lines) != seen:
                    seen, last = len(lines), time.monotonic()
                elif time.monotonic() - last > bound:
                    proc.kill()
                    break
            proc.wait()
            stderr = errors.read_text(errors="replace")
            lines = [json.loads(ln) for ln in results.read_text().splitlines() if ln.strip()]
            ended = {r["i"] for r in lines if "kind" in r}
            records += [r for r in lines if "kind" in r]
            pending = [r for r in lines if r.get("event") == "start" and r["i"] not in ended]
            if pending:
                killed = proc.returncode == -9 and time.monotonic() - last > bound
                kind = "hang" if killed else "crash"
                tail = (stderr.strip().splitlines() or ["no output"])[-1][:200]
                crash = pathlib.Path(str(results) + ".crash")
                stack = crash.read_text(errors="replace").strip() if crash.exists() else ""
                if stack:
                    log(f"  {name}: the worker's Python stack at the crash:\n{stack[-4000:]}")
                    tail = next(
                        (ln.strip() for ln in stack.splitlines() if ln.strip().startswith("File")),
                        tail,
                    )[:200]
                message = f"exit code {proc.returncode}: {tail}"
                records.append(
                    {"i": pending[0]["i"], "kind": kind, "message": message, "recipes": None}
                )
                log(f"  {name}: worker {kind} on case {len(records)} ({message})")
                if "spec" in pending[0]:
                    log(f"  the graph ({pending[0]['case']}):\n{pending[0]['spec']}")
                restarts += 1
            elif proc.returncode != 0:
                tail = (stderr.strip().splitlines() or ["no output"])[-1][:300]
                raise RuntimeError(f"robustness worker for {name} failed: {tail}")
            else:
                break
    return records


def _file_table(results: dict[str, list[dict]]) -> Table:
    table = Table(
        "Damaged files, per reader (hypothesis, seed recorded below)",
        ["reader", "cases", *KIND_COLUMNS, "crash contained", "message rule broken", "met"],
        notes=[
            "target: 0 raw exceptions, 0 crashes, 0 hangs, 0 partial outputs, 0 broken messages "
            "(one line, naming the input, saying what was expected)",
            "crash contained: refusals where the native reader crashed (SIGSEGV, SIGABRT, ...) "
            "in the child process keras_squeeze ran it in, reported as a ModelError",
        ],
    )
    totals = collections.Counter()
    for reader, records in results.items():
        kinds = collections.Counter(r["kind"] for r in records)
        contained = sum(1 for r in records if "crashed the" in r.get("message", ""))
        rule = sum(1 for r in records if r.get("message", "").startswith("RULE: "))
        bad = sum(kinds[k] for k in ("raw exception", "crash", "hang", "partial output")) + rule
        totals.update(kinds)
        totals["cases"] += len(records)
        totals["contained"] += contained
        totals["rule"] += rule
        table.add(
            reader,
            f"{len(records):,}",
            *(f"{kinds[k]:,}" for k in KIND_COLUMNS),
            contained,
            rule,
            "yes" if bad == 0 else "no",
        )
    bad_total = sum(totals[k] for k in ("raw exception", "crash", "hang", "partial output"))
    table.add(
        "**all readers**",
        f"{totals['cases']:,}",
        *(f"{totals[k]:,}" for k in KIND_COLUMNS),
        totals["contained"],
        totals["rule"],
        "yes" if bad_total + totals["rule"] == 0 and totals["cases"] >= 10000 else "no",
    )
    return table


def _graph_table(records: list[dict], seconds: float) -> tuple[Table, Table]:
    from tests.fuzz import graphs

    recipes = (*graphs.PTQ_RECIPES, *graphs.TRAINING_RECIPES)
    per = {r: collections.Counter() for r in recipes}
    dead = collections.Counter(r["kind"] for r in records if r["kind"] != "graph")
    refusals = collections.Counter()
    bad_examples = []
    for record in records:
        for recipe, (kind, message) in (record.get("recipes") or {}).items():
            per[recipe][kind] += 1
            if kind == "KerasSqueezeError":
                refusals[f"{recipe}: {message.split('. Expected')[0][:110]}"] += 1
            elif kind != "read":
                # the error's own last line (a traceback's head says nothing) in the table,
                # the graph in the log, so that the case can be rebuilt
                head = (message.strip().splitlines() or [""])[0]
                bad_examples.append(
                    f"{recipe}: {kind}: {head[:80]} ... {_error_line(message)[:160]}"
                )
                print(f"  {recipe}: {kind} on the graph:\n{record.get('spec')}\n{message}")
            if message.startswith("RULE: "):
                per[recipe]["rule"] += 1
    graphs_done = sum(1 for r in records if r["kind"] == "graph")
    table = Table(
        f"Random model graphs through the recipes ({graphs_done} graphs in {seconds / 60:.0f} min)",
        [
            "recipe",
            "runs",
            "verified",
            "KerasSqueezeError",
            "raw exception",
            "hang",
            "partial output",
            "mutated model",
            "message rule broken",
            "met",
        ],
        notes=[
            f"each graph: every post-training recipe, and one training recipe drawn at random "
            f"(1 epoch of 2 steps, 16 samples, distilled or on labels); {graphs_done} graphs, "
            + ("issue target 500: met" if graphs_done >= 500 else "issue target 500: not met"),
            f"worker crashes: {dead.get('crash', 0)}, worker hangs: {dead.get('hang', 0)} "
            "(a case that killed its worker process)"
            + "".join(
                f"; graph {r['i']}: {r['kind']}, {r['message'][:120]}"
                for r in records
                if r["kind"] != "graph"
            ),
            "verified: compress() returned and save() wrote model.tflite, report.json, "
            "report.md and report.html (with its charts), each checked; mutated: the model's "
            "weights differ after the call",
            *FOUND_BEFORE,
        ],
    )
    for recipe in recipes:
        c = per[recipe]
        runs = sum(v for k, v in c.items() if k != "rule")
        if not runs:
            continue
        bad = c["raw exception"] + c["hang"] + c["partial output"] + c["mutated model"] + c["rule"]
        table.add(
            recipe,
            runs,
            c["read"],
            c["KerasSqueezeError"],
            c["raw exception"],
            c["hang"],
            c["partial output"],
            c["mutated model"],
            c["rule"],
            "yes" if bad == 0 else "no",
        )
    reasons = Table(
        "Why recipes refused random graphs (most frequent first)",
        ["recipe: reason", "times"],
        notes=[f"a run that is not verified or refused: {e}" for e in bad_examples[:10]],
    )
    for reason, times in refusals.most_common(12):
        reasons.add(reason.replace("|", "/"), times)
    return table, reasons


def _log(message):
    print(message, flush=True)


def run_graphs() -> list[Table]:
    """The random-graph campaign alone (restricted by KS_ROBUSTNESS_RECIPES)."""
    from tests.fuzz import graphs

    known = (*graphs.PTQ_RECIPES, *graphs.TRAINING_RECIPES)
    unknown = [r for r in RECIPES or () if r not in known]
    if unknown:
        raise SystemExit(f"KS_ROBUSTNESS_RECIPES names unknown recipe(s) {unknown}; from {known}")
    t0 = time.perf_counter()
    graph_records = _campaign("graphs", "graphs", MAX_GRAPHS, GRAPH_BOUND_S, _log)
    graph_table, reasons = _graph_table(graph_records, time.perf_counter() - t0)
    graph_table.notes.append(
        f"seed {SEED}" + (f"; only the recipes {', '.join(RECIPES)}" if RECIPES else "")
    )
    return [graph_table, reasons]


def run() -> list[Table]:
    import hypothesis

    start = time.perf_counter()
    files = {}
    for reader, count in FILE_CASES.items():
        count = max(1, round(count * SCALE))
        t0 = time.perf_counter()
        files[reader] = _campaign("files", reader, count, CASE_BOUND_S, _log)
        _log(f"  {reader}: {len(files[reader])} cases in {time.perf_counter() - t0:.0f} s")
    file_seconds = time.perf_counter() - start
    file_table = _file_table(files)
    file_table.notes.append(
        f"seed {SEED} (hypothesis {hypothesis.__version__}; a worker restarted after a crash "
        f"or hang goes on with seed + restarts); {file_seconds / 60:.0f} min"
    )
    return [file_table, *run_graphs()]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        _, _, campaign, name, seed, count, results = sys.argv
        # A crash's Python stack to a file of its own: native blocks point descriptor 2
        # at a capture file, where faulthandler's report would be lost with the process.
        import faulthandler

        crash_log = open(results + ".crash", "w")  # noqa: SIM115 (open until the process ends)
        faulthandler.enable(file=crash_log, all_threads=True)
        sys.exit(_worker(campaign, name, int(seed), int(count), results))
    graphs_only = sys.argv[1:] == ["graphs"]
    for table in run_graphs() if graphs_only else run():
        print(table.text(), end="\n\n")
