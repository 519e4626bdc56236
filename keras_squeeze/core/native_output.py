"""Catching what native code prints: TensorFlow's C++ runtime, the TFLite converter, LiteRT.

Native libraries write to the process's file descriptors 1 and 2 directly,
past Python's `sys.stdout` / `sys.stderr`, so `contextlib.redirect_stdout`
cannot catch "fully_quantize: 0, inference_type: 6 ..." or absl's log lines.
`NativeOutput` points descriptors 1 and 2 (and Python's two streams) at one
temporary file for the duration of a block, restores them in `finally` and
keeps the text, so that a failure can still show what was printed.

One block at a time in the process (a lock; the same thread may nest):
descriptors are process-wide, so output another thread writes meanwhile is
caught too.

Example:
    >>> with NativeOutput(enabled=verbose < 2) as log:
    ...     content = converter.convert()
    >>> log.text   # what the converter printed ("" when not enabled)
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
import tempfile
import threading

_FDS = (1, 2)
_lock = threading.RLock()


def _flush_c_streams() -> None:
    """fflush(NULL): C stdio buffers (a converter's printf) go out before a descriptor moves."""
    # No C library handle by that name on some platforms (Windows).
    with contextlib.suppress(OSError, TypeError, AttributeError):
        ctypes.CDLL(None).fflush(None)


class _Stream(io.TextIOBase):
    """What `sys.stdout` / `sys.stderr` are during a block: writes go to the capture, and
    after the block to the stream that was there before. Something that keeps a reference
    taken during the block (a `logging.StreamHandler()` created then, as TensorFlow's
    logger is on its first use) goes on writing where it should, never to a closed file."""

    def __init__(self, capture, original):
        super().__init__()
        self._capture = capture
        self._original = original

    def _target(self):
        return self._capture if self._capture is not None else self._original

    def release(self) -> None:
        self._capture = None

    def write(self, text):
        return self._target().write(text)

    def flush(self):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            self._target().flush()

    def fileno(self):
        return self._target().fileno()

    def isatty(self):
        return self._capture is None and bool(getattr(self._original, "isatty", bool)())

    def writable(self):
        return True

    @property
    def encoding(self):
        return getattr(self._target(), "encoding", "utf-8")

    @property
    def errors(self):
        return getattr(self._target(), "errors", "replace")


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()


class NativeOutput:
    """Context manager: captures descriptors 1 and 2 and Python's streams; `.text` after.

    Args:
        enabled: False runs the block untouched (output goes where it always
            goes) and leaves `text` empty.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.text = ""
        self._saved: dict[int, int] = {}
        self._file = None
        self._writer = None
        self._streams = None
        self._proxies: tuple[_Stream, ...] = ()
        self._locked = False

    def lines(self) -> list[str]:
        """The captured text's non-blank lines."""
        return [ln.rstrip() for ln in self.text.splitlines() if ln.strip()]

    def replay(self) -> None:
        """Writes the captured text to `sys.stderr`: a failed block loses nothing it printed."""
        if self.text:
            sys.stderr.write(self.text)
            sys.stderr.flush()

    def __enter__(self) -> NativeOutput:
        if not self.enabled:
            return self
        _lock.acquire()
        self._locked = True
        try:
            _flush_python_streams()
            _flush_c_streams()
            self._file = tempfile.TemporaryFile()
            for fd in _FDS:
                self._saved[fd] = os.dup(fd)
            # A duplicate of the file shares its offset, so Python's and the
            # native writes land in the order they were made.
            self._writer = open(  # closed in _restore
                os.dup(self._file.fileno()), "w", buffering=1, errors="replace"
            )
            for fd in _FDS:
                os.dup2(self._file.fileno(), fd)
            self._streams = (sys.stdout, sys.stderr)
            self._proxies = tuple(_Stream(self._writer, s) for s in self._streams)
            sys.stdout, sys.stderr = self._proxies
        except OSError:
            # A closed descriptor (a daemon, pythonw): nothing to redirect.
            self._restore()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._restore()

    def _restore(self) -> None:
        try:
            if self._streams is not None:
                for proxy in self._proxies:
                    proxy.release()
                self._proxies = ()
                sys.stdout, sys.stderr = self._streams
                self._streams = None
            if self._writer is not None:
                self._writer.flush()
            _flush_c_streams()
            for fd, saved in self._saved.items():
                os.dup2(saved, fd)
                os.close(saved)
            self._saved = {}
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if self._file is not None:
                self._file.seek(0)
                self.text = self._file.read().decode("utf-8", errors="replace")
                self._file.close()
                self._file = None
        finally:
            if self._locked:
                self._locked = False
                _lock.release()
