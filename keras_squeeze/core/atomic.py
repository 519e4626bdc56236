"""Atomic writes: nothing appears at a target path until it is complete.

Files and directories are first written into a hidden staging directory next
to their target (same file system, so the final move is a rename) and moved
into place only when complete; a failure removes the staging directory.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import tempfile
import uuid

from keras_squeeze.errors import OutputError


def check_writable_dir(path, argument: str = "output directory") -> pathlib.Path:
    """Checks that `path` is, or can be created as, a writable directory.

    Nothing is created: the nearest existing ancestor must be a writable directory.

    Raises:
        OutputError: it is a file, or the nearest existing ancestor is not writable.
    """
    from keras_squeeze.safety.paths import fs_path

    p = fs_path(path, argument, OutputError).expanduser().absolute()
    if p.exists() and not p.is_dir():
        raise OutputError(f"The {argument} is a file. Expected a directory path. Received: '{p}'")
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(
            f"The {argument} cannot be written. Expected a writable directory (or one that can "
            f"be created). Received: '{p}' ('{probe}' is not writable)"
        )
    return p


def _ensure_parent(path: pathlib.Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(
            f"The directory for the output cannot be created. Expected a writable location. "
            f"Received: '{path.parent}' ({e.strerror})"
        ) from e


@contextlib.contextmanager
def staging_dir(target_parent):
    """A temporary directory inside `target_parent`, removed on exit."""
    parent = pathlib.Path(target_parent)
    _ensure_parent(parent / "x")
    try:
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=".keras_squeeze-staging-", dir=parent))
    except OSError as e:
        raise OutputError(
            f"The output directory cannot be written. Expected a writable directory. "
            f"Received: '{parent}' ({e.strerror})"
        ) from e
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def move_into_place(source: pathlib.Path, target: pathlib.Path) -> None:
    """Moves a staged file or directory to `target`, replacing what was there.

    A replaced directory is renamed aside first and deleted after the move, so
    `target` always holds either the old or the new complete version.
    """
    target = pathlib.Path(target)
    _ensure_parent(target)
    if source.is_dir():
        old = None
        if target.exists() or target.is_symlink():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
        try:
            os.replace(source, target)
        except OSError:
            if old is not None:
                os.replace(old, target)
            raise
        if old is not None and old.is_symlink():
            old.unlink()  # a link that stood there: removed, what it pointed at untouched
        elif old is not None:
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


_FILE_MODE = 0o666


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path, data: bytes) -> pathlib.Path:
    """Writes `data` to `path` atomically (temp file in the same directory, then rename)."""
    target = pathlib.Path(path)
    _ensure_parent(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates 0600; the file gets the mode open() would give it (0666 & ~umask),
        # so e.g. a TF Serving container running as another user can read it.
        os.fchmod(fd, _FILE_MODE & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def write_text(path, text: str) -> pathlib.Path:
    return write_bytes(path, text.encode("utf-8"))
