"""Group commit: verified files become stable in batches, and only then are journaled.

Frame files are written to ``*.tmp`` and renamed into place without an fsync each: one
fsync per frame made every write wait on the disk. Instead, every ``interval`` seconds
(or sooner, once ``max_batch`` frames or ``max_bytes`` of their files are waiting) one
durability barrier makes the batch's files and their directory entries stable, and only
then are the batch's lines appended to index.jsonl and the journal synced. So a line
never becomes stable before its frame's file did.

What each failure can lose:
- the process is killed (SIGKILL, OOM): the files are in the page cache and survive; the
  lines of the batch not yet committed (at most ``interval`` seconds of frames) are
  missing, so a rerun fetches those frames again and overwrites their files;
- the OS crashes or the power fails: the same, plus any file data that had not reached
  the disk, which belongs to frames the journal does not list either.
Nothing the journal lists is ever lost or torn.

The barrier is ``syncfs(2)`` on the output folder's file system where the C library has
it (one call for the whole batch, whichever process wrote the files); elsewhere each file
and each directory of the batch is fsynced.

Once stable, a batch's files leave the page cache (:func:`release_cached`) unless asked to
stay (``Settings.keep_page_cache``). A bulk download writes far more than memory holds
and reads none of it back: cached, its frames would push out what the rest of the
machine has cached, and every page a frame takes is memory the kernel must find afresh.
Handed back, the same pages serve the next batch. On the development VM, whose host
reclaims the guest's free memory, this took ``--format raw`` from 633-698 to 747-830
frames/s (2490 frames at 5 ms, three runs each). Bounding a batch's bytes
(``max_bytes``) keeps those pages few: they are handed back after a few MB, not after
a quarter of a second's worth of frames.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import anyio

from .errors import OutputError
from .journal import Journal
from .libc import errno_error
from .libc import syncfs as _SYNCFS
from .model import FrameResult

#: Seconds between barriers while frames keep arriving.
COMMIT_INTERVAL = 0.25
#: A batch this large is committed without waiting for the interval...
COMMIT_BATCH = 1024
#: ...and so is one whose files hold this many bytes, so that the pages a run's files
#: hold until they are stable and handed back do not grow with its speed, as a quarter
#: second's worth of frames would (``benchmarks/NOTES.md``, "Fresh page-cache pages").
COMMIT_BYTES = 4 << 20
#: Results waiting while a barrier is under way, at most, before the sink waits for it
#: too (:meth:`Committer.room`): a slow disk then slows the run down instead of piling
#: results up in memory.
MAX_PENDING = 8 * COMMIT_BATCH


def make_stable(out_dir: Path, paths: Iterable[str]) -> None:
    """One durability barrier: the files at ``paths`` and their directory entries are on
    stable storage when this returns."""
    if _SYNCFS is not None:
        fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _SYNCFS(fd) != 0:
                raise errno_error(str(out_dir))
        finally:
            os.close(fd)
        return
    folders = set()
    for path in paths:
        _fsync_path(path, os.O_RDONLY)
        folders.add(os.path.dirname(path))
    for folder in sorted(folders):
        _fsync_path(folder, os.O_RDONLY | os.O_DIRECTORY)


def release_cached(paths: Iterable[str]) -> None:
    """Drop the cached pages of files already stable (``POSIX_FADV_DONTNEED``; a no-op
    where the platform lacks it). Clean pages only: a file not yet written back keeps
    them, which is why this follows the barrier. A file gone meanwhile is skipped."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass  # advice only: a file system that takes none loses nothing
        finally:
            os.close(fd)


def _fsync_path(path: str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Committer:
    """Journals results in batches, each after a barrier that made its files stable.

    ``add`` never blocks; :meth:`run` (a task of the pipeline) commits a batch every
    ``interval`` seconds or as soon as ``max_batch`` results (or files of ``max_bytes``)
    are waiting, one batch at a time, in a worker thread so that the event loop never
    waits on the disk. Results that arrive during a barrier wait for the next one; past
    ``max_pending`` of them, :meth:`room` makes their producer wait as well.
    """

    def __init__(self, journal: Journal, *, interval: float = COMMIT_INTERVAL,
                 max_batch: int = COMMIT_BATCH, max_bytes: int = COMMIT_BYTES,
                 max_pending: int = MAX_PENDING, release: bool = True) -> None:
        self.journal = journal
        self.interval = interval
        self.max_batch = max_batch
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        #: Drop each committed batch from the page cache (:func:`release_cached`).
        self.release = release
        self.batches = 0
        self._pending: list[FrameResult] = []
        #: Bytes in the files of ``_pending``.
        self._pending_bytes = 0
        self._wake = anyio.Event()
        #: Set (and replaced) each time a commit takes the waiting results.
        self._taken = anyio.Event()
        self._closing = False

    def add(self, results: Iterable[FrameResult]) -> None:
        start = len(self._pending)
        self._pending.extend(results)
        self._pending_bytes += sum(r.file_bytes or 0 for r in self._pending[start:])
        if len(self._pending) >= self.max_batch or self._pending_bytes >= self.max_bytes:
            self._wake.set()

    async def room(self) -> None:
        """Return once fewer than ``max_pending`` results wait to be committed (at once,
        unless a barrier is taking long)."""
        while len(self._pending) >= self.max_pending and not self._closing:
            await self._taken.wait()

    def close(self) -> None:
        """No more results: :meth:`run` commits what is waiting and returns."""
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            with anyio.move_on_after(self.interval):
                await self._wake.wait()
            self._wake = anyio.Event()
            await self.commit()
            if self._closing and not self._pending:
                return

    async def commit(self) -> None:
        """Commit what is waiting now (a no-op when nothing is)."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._pending_bytes = 0
        self._taken.set()
        self._taken = anyio.Event()
        # A commit that has begun finishes, even when the run is being cancelled: its
        # frames are on disk, and their lines are what a rerun resumes from.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._commit, batch)

    def _commit(self, batch: list[FrameResult]) -> None:
        files = [str(r.path) for r in batch if r.path is not None]
        try:
            if files:
                make_stable(self.journal.out_dir, files)
        except OSError as exc:
            raise OutputError(
                f"cannot make the frames in {self.journal.out_dir} stable: "
                f"{exc.strerror or exc}",
                hint="check the disk; frames already journaled are kept, a rerun fetches "
                "the rest",
            ) from None
        self.journal.append_many(batch)
        self.journal.sync()
        self.batches += 1
        if files and self.release:
            release_cached(files)
