"""One writer per output folder: an advisory lock held for the whole run.

Two runs into one folder would fetch the same frames, interleave their journal lines and
delete each other's temporary files. A run therefore holds an exclusive ``flock`` on
``<out>/.hi_async.lock`` from before it reads the journal until after it writes the
summary. The kernel releases the lock when the process ends however it ends (SIGKILL
included), so a stale lock file never blocks the next run; the file names the holder's
PID so that a refused run can say who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from .errors import OutputError

LOCK_NAME = ".hi_async.lock"


class FolderLock:
    """``with FolderLock(out_dir):`` — this process is the folder's only writer, or
    OutputError (exit 2) naming the process that is."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise OutputError(
                    f"another hi_async run{holder} is writing to {self.path.parent}",
                    hint="wait for it to finish, stop it, or choose another --out",
                ) from None
            except BaseException:
                os.close(fd)
                raise
            # The holder before us may have removed the file between our open and our
            # lock: then we hold a lock on a file nobody else will find. Start over.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still locked, so that no one locks it meanwhile
        os.close(fd)


def _holder(fd: int) -> str:
    """`` (PID n)`` from the lock file, or nothing when it names no process."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (PID {text})" if text.isdigit() else ""


def sole_writer(out_dir: Path | None) -> contextlib.AbstractContextManager[object]:
    """This process as the one writer of ``out_dir`` while in the block; nothing to lock
    when there is no output folder."""
    return FolderLock(out_dir) if out_dir is not None else contextlib.nullcontext()
