"""NativeOutput: what native code writes to descriptors 1 and 2 is caught, kept and restored."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading

import pytest

from keras_squeeze.core.native_output import NativeOutput


def _libc_printf(text: str) -> None:
    """C stdio's printf: buffered, as a converter's printf is."""
    ctypes.CDLL(None).printf(text.encode())


def _write_everywhere(tag: str) -> None:
    os.write(1, f"{tag} fd1\n".encode())
    os.write(2, f"{tag} fd2\n".encode())
    print(f"{tag} print")
    sys.stderr.write(f"{tag} stderr\n")
    if sys.platform != "win32":
        _libc_printf(f"{tag} printf\n")


def test_catches_descriptors_c_stdio_and_python_streams(capfd):
    with NativeOutput() as log:
        _write_everywhere("a")
    after = capfd.readouterr()
    assert after.out == "" and after.err == ""
    expected = ["a fd1", "a fd2", "a print", "a stderr"]
    if sys.platform != "win32":
        expected.append("a printf")
    assert sorted(log.lines()) == sorted(expected)
    # The descriptors are back: output reaches the terminal again.
    _write_everywhere("b")
    after = capfd.readouterr()
    assert "b fd1" in after.out and "b print" in after.out
    assert "b fd2" in after.err and "b stderr" in after.err


def test_a_handler_made_during_a_block_writes_where_stderr_is_after_it(capfd):
    """TensorFlow's logger makes its StreamHandler(sys.stderr) on first use: made inside a
    block, it must not be left holding a closed file ("--- Logging error --- ... I/O
    operation on closed file" on every later warning)."""
    import logging

    logger = logging.getLogger("keras_squeeze.tests.native_output")
    logger.propagate = False
    with NativeOutput() as log:
        handler = logging.StreamHandler()  # binds the sys.stderr of this moment
        logger.addHandler(handler)
        logger.warning("inside")
    try:
        logger.warning("after")
        print("print after", file=handler.stream)
    finally:
        logger.removeHandler(handler)
    assert log.lines() == ["inside"]
    err = capfd.readouterr().err
    assert "after" in err and "print after" in err
    assert "Logging error" not in err and "closed file" not in err


def test_disabled_passes_everything_through(capfd):
    with NativeOutput(enabled=False) as log:
        os.write(2, b"shown\n")
        print("shown too")
    after = capfd.readouterr()
    assert log.text == "" and "shown" in after.err and "shown too" in after.out


def test_restored_and_kept_when_the_block_fails(capfd):
    log = NativeOutput()
    with pytest.raises(RuntimeError, match="converter failed"), log:
        os.write(2, b"error: the reason\n")
        raise RuntimeError("converter failed")
    assert log.lines() == ["error: the reason"]
    assert capfd.readouterr().err == ""
    log.replay()
    assert capfd.readouterr().err == "error: the reason\n"


def test_nested_blocks_each_keep_their_own(capfd):
    with NativeOutput() as outer:
        os.write(2, b"outer before\n")
        with NativeOutput() as inner:
            os.write(2, b"inner\n")
        os.write(2, b"outer after\n")
    assert inner.lines() == ["inner"]
    assert outer.lines() == ["outer before", "outer after"]
    assert capfd.readouterr().err == ""


def test_one_block_at_a_time_across_threads(capfd):
    entered, release = threading.Event(), threading.Event()
    logs = {}

    def first():
        with NativeOutput() as log:
            entered.set()
            release.wait(10)
            os.write(2, b"first\n")
        logs["first"] = log

    def second():
        with NativeOutput() as log:
            os.write(2, b"second\n")
        logs["second"] = log

    t1 = threading.Thread(target=first)
    t1.start()
    assert entered.wait(10)
    t2 = threading.Thread(target=second)
    t2.start()
    t2.join(0.3)
    assert t2.is_alive()  # waits for the first block to restore the descriptors
    release.set()
    t1.join(10)
    t2.join(10)
    assert logs["first"].lines() == ["first"] and logs["second"].lines() == ["second"]
    assert capfd.readouterr().err == ""


@pytest.mark.skipif(sys.platform == "win32", reason="file descriptor limits are POSIX")
def test_no_descriptor_to_spare_leaves_the_output_alone():
    # Out of file descriptors: nothing is redirected, nothing is lost.
    code = (
        "import os, resource\n"
        "from keras_squeeze.core.native_output import NativeOutput\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit("
        "resource.RLIMIT_NOFILE)[1]))\n"
        "held = []\n"
        "try:\n"
        "    while True: held.append(os.open(os.devnull, os.O_RDONLY))\n"
        "except OSError: pass\n"
        "with NativeOutput() as log:\n"
        "    print('still printed', flush=True)\n"
        "for fd in held: os.close(fd)\n"
        "print('captured:', repr(log.text))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["still printed", "captured: ''"]
