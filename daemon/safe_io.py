"""Files in job folders, opened by a root ftd without being tricked by the job's user.

In system mode a job folder belongs to the job's user, who may replace `log.txt`, `metrics.jsonl`
or `exit.json` with a symlink (or a hard link, or a FIFO) to something only root may read or
write. Everything ftd reads or writes there goes through these helpers: no symlinks are followed
(O_NOFOLLOW), only regular files are accepted, a file must belong to the job's owner or to ftd,
ownership is handed over with fchown on the open descriptor (never chown by path), and new files
are created under fresh random names (O_EXCL) and renamed into place.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

_ME = os.geteuid()


class UnsafeFile(OSError):
    """The path is a link, not a regular file, or owned by someone else."""


def open_fd(path: Path, flags: int = os.O_RDONLY, owner_uid: int | None = None, mode: int = 0o644) -> int:
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{path} is not a regular file")
        if info.st_nlink > 1:
            raise UnsafeFile(f"{path} has other hard links")
        if owner_uid is not None and info.st_uid not in (owner_uid, _ME):
            raise UnsafeFile(f"{path} belongs to uid {info.st_uid}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_read(path: Path, owner_uid: int | None = None):
    """A binary reader for a job file (raises OSError/UnsafeFile as open() would)."""
    return os.fdopen(open_fd(path, os.O_RDONLY, owner_uid), "rb")


def read_bytes(path: Path, owner_uid: int | None = None, offset: int = 0, size: int = -1) -> bytes:
    with open_read(path, owner_uid) as handle:
        handle.seek(offset)
        return handle.read(size)


def open_append(path: Path, uid: int | None = None, gid: int | None = None) -> int:
    """An append descriptor for the job's log, created if missing, owned by the job's user."""
    fd = open_fd(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, uid)
    if uid is not None and _ME == 0:
        os.fchown(fd, uid, gid if gid is not None else -1)
    return fd


def write_atomic(path: Path, text: str, uid: int | None = None, gid: int | None = None, mode: int = 0o644) -> None:
    """Write `text` to a new randomly named file next to `path`, hand it to uid, rename it over."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            os.fchmod(handle.fileno(), mode)
            if uid is not None and _ME == 0:
                os.fchown(handle.fileno(), uid, gid if gid is not None else -1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
