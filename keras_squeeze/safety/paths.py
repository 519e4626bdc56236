"""Output names stay inside their output directory.

`contained(directory, name)` is the only way an artifact's name becomes a
path: a name that is absolute, climbs with "..", or reaches through a
symbolic link to somewhere outside the directory is refused, so nothing
outside the output directory is ever replaced.

Example:
    >>> contained("out", "saved_model/1")
    PosixPath('/abs/out/saved_model/1')
    >>> contained("out", "../model.tflite")
    OutputError: The artifact name '../model.tflite' leads outside the output directory ...
"""

from __future__ import annotations

import os
import pathlib

from keras_squeeze.errors import KerasSqueezeError, OutputError


def fs_path(path, what: str, error: type[KerasSqueezeError]) -> pathlib.Path:
    """`path` as a Path, refusing text no file system takes (a NUL byte).

    pathlib's exists() / is_file() raise ValueError on such text; readers call
    this first so a hostile path is an error of their own kind.

    Raises:
        `error`: the path holds a NUL byte.
    """
    text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    if "\x00" in text:
        raise error(
            f"The {what} is not a usable path. Expected a file system path. Received: {text!r} "
            "(it holds a NUL byte)"
        )
    return pathlib.Path(text)


def contained(directory, name, what: str = "artifact name") -> pathlib.Path:
    """`directory / name`, checked to stay inside `directory`.

    Args:
        directory: the output directory (it need not exist yet).
        name: a relative name ("model.tflite", "saved_model/1").
        what: how the error names `name`.

    Returns:
        The absolute target path.

    Raises:
        OutputError: `name` is empty or absolute, has a ".." part, or an
            existing part of it is a symbolic link that leads outside `directory`.
    """
    out = pathlib.Path(directory).expanduser().absolute()
    text = os.fspath(name)
    rel = pathlib.PurePath(text)
    if not text or rel.is_absolute() or rel.anchor or ".." in rel.parts or not rel.parts:
        raise OutputError(
            f"The {what} {text!r} leads outside the output directory. Expected a relative name "
            f"without '..' parts. Received: {text!r} in '{out}'"
        )
    target = out.joinpath(*rel.parts)
    real_out = out.resolve()
    # The target itself may be a link (it is replaced, not followed); its
    # parent directories must really be inside the output directory.
    parent = target.parent.resolve()
    if parent != real_out and not parent.is_relative_to(real_out):
        raise OutputError(
            f"The {what} {text!r} leads outside the output directory through a symbolic link. "
            "Expected the output directory's sub-directories inside it. Received: "
            f"'{target.parent}' resolves to '{parent}'"
        )
    return target


def check_slots(directory, slots) -> dict[str, pathlib.Path]:
    """The target of each artifact name, checked before any work is done.

    Args:
        directory: the output directory.
        slots: {relative name: whether it is a directory} of what will be written.

    Returns:
        {name: absolute target path}.

    Raises:
        OutputError: a name leads outside `directory` (see `contained`), or the
            directory holds a file where a directory goes (the name itself or
            one of its parents), or a directory where a file goes.
    """
    out = pathlib.Path(directory).expanduser().absolute()
    targets = {}
    for name, is_dir in slots.items():
        target = contained(out, name)
        parents = [p for p in target.relative_to(out).parents if p != pathlib.Path(".")]
        for parent in [*parents, pathlib.Path(name)]:
            existing = out / parent
            want_dir = is_dir or parent != pathlib.Path(name)
            if existing.exists() and existing.is_dir() != want_dir:
                raise OutputError(
                    f"The output directory holds '{parent}' as a "
                    f"{'file' if want_dir else 'directory'}. Expected a "
                    f"{'directory' if want_dir else 'file'} (or nothing) there. "
                    f"Received: '{existing}'"
                )
        targets[name] = target
    return targets
