"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every writer in the package goes through here. The pattern: write a temporary file beside the
target, flush and ``fsync`` it, ``os.replace`` it over the target, then ``fsync`` the directory so
the rename itself is on disk. A process killed at any instant (``kill -9``) leaves the previous
complete file or none, plus at most a hidden ``.<name>.*.tmp`` file; a power cut after the function
returns keeps the new file. ``test/test_crash_safety.py`` kills writers at random points to check it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

__all__ = [
    "atomic_open",
    "fsync_dir",
    "fsync_tree",
    "replace_atomic",
    "unlink_durably",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and move it over ``path`` only if the block succeeds.

    Args:
        path: the final file name. Its directory must exist.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        **kwargs: passed to :func:`open` (e.g. ``encoding``, ``newline``).

    The data is flushed and fsynced before the rename, so a crash or an exception inside the
    block leaves either the previous file or nothing, never a truncated file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    final = Path(path)
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """``fsync`` a directory, so renames and new entries in it survive a power cut.

    A no-op where directories cannot be opened for syncing (Windows).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (PermissionError, IsADirectoryError):  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike[str]) -> None:
    """``fsync`` every file and directory under ``root`` (a finished directory about to be renamed in)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(dirpath)


def replace_atomic(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Move a finished file or directory ``src`` over ``dst`` durably.

    ``src`` (every file in it, for a directory) is fsynced first, then renamed with
    :func:`os.replace` (atomic on one file system: ``src`` must sit beside ``dst``), then ``dst``'s
    directory is fsynced. Use it for files written by code that cannot write to a handle (ONNX
    Runtime's quantizer, TensorRT's builder, the rosbags writer).
    """
    source = Path(src)
    if source.is_dir():
        fsync_tree(source)
    else:
        fd = os.open(source, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(source, dst)
    fsync_dir(Path(dst).parent)


def unlink_durably(path: str | os.PathLike[str]) -> None:
    """Remove ``path`` if it exists and ``fsync`` its directory (a no-op when there is no such file).

    For files that pair with another: remove the index (``model.json``) before replacing what it
    indexes, so a kill in between leaves no index rather than one naming the previous data.
    """
    target = Path(path)
    try:
        os.unlink(target)
    except FileNotFoundError:
        return
    fsync_dir(target.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
