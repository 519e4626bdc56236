"""Runs edgetpu_compiler on a .tflite, when it is installed, and reads what it reports.

edgetpu_compiler is Google's closed-source compiler (x86-64 Linux; Debian
package "edgetpu-compiler" of the coral-edgetpu-stable apt repository at
packages.cloud.google.com, or Coral's Colab notebook). Each run gets its own
temporary directory: the model is written there as model.tflite and the
compiler writes model_edgetpu.tflite and model_edgetpu.log next to it. The
process runs in its own session so a timeout ends it and any child process
it started (compiler 16 compiles in a child process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile

from keras_squeeze.bench.sources import check_flatbuffer
from keras_squeeze.core import atomic
from keras_squeeze.edgetpu.compiler_log import CompilerLog, parse_compiler_log
from keras_squeeze.errors import ConfigError, DependencyError, ExportError

COMPILER = "edgetpu_compiler"
DEFAULT_TIMEOUT_S = 600.0
INSTALL_HINT = (
    "edgetpu_compiler on PATH (x86-64 Debian/Ubuntu: add 'deb "
    "https://packages.cloud.google.com/apt coral-edgetpu-stable main' to the apt sources and "
    "apt-get install edgetpu-compiler; elsewhere use Coral's Colab compiler)"
)
_MODEL_NAME = "model.tflite"


@dataclasses.dataclass(frozen=True, repr=False)
class CompileResult:
    """One successful compiler run.

    Attributes:
        content: the compiled model (model_edgetpu.tflite) bytes.
        log: what the compiler reported (stdout merged with its .log file).
        command: the command line that ran.
        stdout / stderr: the compiler's raw output.
    """

    content: bytes
    log: CompilerLog
    command: tuple[str, ...]
    stdout: str
    stderr: str

    def __repr__(self) -> str:
        return (
            f"CompileResult({len(self.content):,} bytes, compiler {self.log.compiler_version}, "
            f"{self.log.ops_on_edgetpu} ops on the Edge TPU, {self.log.ops_on_cpu} on the CPU)"
        )


def find_compiler(executable: str | os.PathLike | None = None) -> str | None:
    """The compiler's path: `executable` (a path or a name on PATH) or edgetpu_compiler, or None."""
    name = os.fspath(executable) if executable is not None else COMPILER
    if os.sep in name or (os.altsep and os.altsep in name):
        path = pathlib.Path(name).expanduser()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(name)


def compiler_command(
    executable: str,
    model_path,
    out_dir,
    *,
    min_runtime_version: int | None = None,
    compiler_timeout_s: int | None = None,
    extra_args: tuple[str, ...] = (),
) -> list[str]:
    """The edgetpu_compiler command line for one model.

    --show_operations prints the operator table to stdout; --out_dir puts the
    outputs next to the model in the run's directory. --min_runtime_version
    and --timeout_sec (compiler 16) are passed only when given, so older
    compilers still accept the command.

    Example:
        >>> compiler_command("edgetpu_compiler", "/tmp/x/model.tflite", "/tmp/x")
        ['edgetpu_compiler', '--show_operations', '--out_dir', '/tmp/x', '/tmp/x/model.tflite']
    """
    cmd = [str(executable), "--show_operations", "--out_dir", str(out_dir)]
    if min_runtime_version is not None:
        if isinstance(min_runtime_version, bool) or not isinstance(min_runtime_version, int):
            raise ConfigError(
                "min_runtime_version must be an Edge TPU runtime version number. Expected an "
                f"int such as 13 or 14. Received: {min_runtime_version!r}"
            )
        cmd += ["--min_runtime_version", str(min_runtime_version)]
    if compiler_timeout_s is not None:
        cmd += ["--timeout_sec", str(int(compiler_timeout_s))]
    cmd += [str(a) for a in extra_args]
    cmd.append(str(model_path))
    return cmd


def _run(cmd: list[str], cwd: str, timeout: float) -> subprocess.CompletedProcess:
    """Runs cmd in its own session; on timeout the whole process group is killed."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _failure_detail(log: CompilerLog, stdout: str, stderr: str) -> str:
    if log.errors:
        return " | ".join(log.errors[-4:])
    lines = [ln.strip() for ln in (stderr + "\n" + stdout).splitlines() if ln.strip()]
    return " | ".join(lines[-3:]) or "no output"


def run_compiler(
    tflite_bytes: bytes,
    *,
    executable: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    min_runtime_version: int | None = None,
    compiler_timeout_s: int | None = None,
) -> CompileResult:
    """Compiles a .tflite with edgetpu_compiler in a temporary directory.

    Args:
        tflite_bytes: the quantized .tflite.
        executable: the compiler (path or name on PATH); default edgetpu_compiler.
        timeout: seconds before the run is killed.
        min_runtime_version / compiler_timeout_s: passed as --min_runtime_version
            and --timeout_sec when given.

    Returns:
        A CompileResult with the compiled bytes and the parsed log.

    Raises:
        ModelError: the bytes are not a .tflite.
        DependencyError: the compiler is not installed.
        ExportError: the compiler failed (non-zero exit, or no output model)
            or did not finish within `timeout`.

    Example:
        >>> result = run_compiler(artifact.content)
        >>> result.log.ops_on_cpu
        0
    """
    content = bytes(tflite_bytes)
    check_flatbuffer(content, "The model to compile")
    if not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0):
        raise ConfigError(
            "timeout must be a positive number of seconds. Expected e.g. 600. "
            f"Received: {timeout!r}"
        )
    exe = find_compiler(executable)
    if exe is None:
        raise DependencyError(
            f"The Edge TPU compiler was not found. Expected {INSTALL_HINT}. Received: "
            f"'{os.fspath(executable) if executable is not None else COMPILER}' is not an "
            "executable file or on PATH"
        )
    with tempfile.TemporaryDirectory(prefix="keras_squeeze-edgetpu-") as tmp:
        model_path = pathlib.Path(tmp) / _MODEL_NAME
        model_path.write_bytes(content)
        cmd = compiler_command(
            exe,
            model_path,
            tmp,
            min_runtime_version=min_runtime_version,
            compiler_timeout_s=compiler_timeout_s,
        )
        try:
            done = _run(cmd, tmp, timeout)
        except subprocess.TimeoutExpired as e:
            raise ExportError(
                f"edgetpu_compiler did not finish within {timeout:g} s and was stopped. Expected "
                f"it to compile the model in time (raise timeout=). Received: {' '.join(cmd)}"
            ) from e
        except OSError as e:
            raise ExportError(
                f"edgetpu_compiler could not be started. Expected an executable compiler. "
                f"Received: {exe} ({e.strerror or e})"
            ) from e
        log = parse_compiler_log(done.stdout + "\n" + done.stderr)
        out_model = model_path.with_name(model_path.stem + "_edgetpu.tflite")
        if done.returncode != 0 or not out_model.is_file():
            what = (
                f"exit code {done.returncode}"
                if done.returncode
                else "exit code 0 but no model_edgetpu.tflite"
            )
            raise ExportError(
                f"edgetpu_compiler failed on the model ({what}). Expected 'Model compiled "
                f"successfully' and a compiled model. Received: "
                f"{_failure_detail(log, done.stdout, done.stderr)}"
            )
        log_file = model_path.with_name(model_path.stem + "_edgetpu.log")
        if log_file.is_file():
            log = log.merged(parse_compiler_log(log_file.read_text(errors="replace")))
        compiled = out_model.read_bytes()
    check_flatbuffer(compiled, "The compiler's output model_edgetpu.tflite")
    return CompileResult(compiled, log, tuple(cmd), done.stdout, done.stderr)


def compile_for_edgetpu(
    tflite_bytes: bytes,
    out_path,
    *,
    executable: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    min_runtime_version: int | None = None,
) -> tuple[pathlib.Path | None, CompilerLog | None]:
    """Compiles for the Edge TPU when edgetpu_compiler is installed; (None, None) when it is not.

    The compiled model is written atomically to `out_path` (e.g.
    "squeezed/model_edgetpu.tflite"): nothing appears there if the compiler fails.

    Returns:
        (path written, parsed compiler log), or (None, None) without a compiler.

    Raises:
        ModelError: the bytes are not a .tflite.
        ExportError: the compiler is installed but failed or timed out.
        OutputError: out_path cannot be written.

    Example:
        >>> path, log = ks.edgetpu.compile_for_edgetpu(result.tflite, "out/model_edgetpu.tflite")
        >>> if path is None: print("edgetpu_compiler not installed")
    """
    check_flatbuffer(bytes(tflite_bytes), "The model to compile")
    if find_compiler(executable) is None:
        return None, None
    target = pathlib.Path(out_path).expanduser()
    atomic.check_writable_dir(target.parent, "output file's directory")
    result = run_compiler(
        tflite_bytes,
        executable=executable,
        timeout=timeout,
        min_runtime_version=min_runtime_version,
    )
    atomic.write_bytes(target, result.content)
    return target, result.log
