"""index.jsonl: the journal of frames safely on disk, and resuming from it.

A frame's line is appended right after its file was renamed into place, so after a
crash at any moment the index lists exactly the frames that are on disk. A torn last
line (the crash hit mid-append) is cut off on resume, and leftover ``*.tmp`` files are
removed. A rerun skips frames whose latest line says ``verified`` and whose file is
still there.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from .errors import OutputError
from .model import FrameResult
from .paths import EXTENSIONS

INDEX = "index.jsonl"
SUMMARY = "summary.json"


def _entry(result: FrameResult, out_dir: Path) -> dict[str, Any]:
    ref = result.ref
    path = None
    if result.path is not None:
        path = Path(os.path.relpath(result.path, out_dir)).as_posix()
    return {
        "imageSetId": ref.image_set_id,
        "imageFrameId": ref.image_frame_id,
        "studyInstanceUid": ref.study_instance_uid,
        "seriesInstanceUid": ref.series_instance_uid,
        "sopInstanceUid": ref.sop_instance_uid,
        "frameNumber": ref.frame_number,
        "rows": ref.rows,
        "columns": ref.columns,
        "samplesPerPixel": ref.samples_per_pixel,
        "dtype": np.dtype(ref.dtype).name,
        "contentType": result.content_type,
        "path": path,
        "expectedCrc32": ref.expected_crc32,
        "actualCrc32": result.actual_crc32,
        "status": result.status,
        "error": result.error,
    }


def remove_leftover_tmp(out_dir: Path) -> int:
    """Delete ``*.tmp`` files a crashed run left in the output folder; returns how many."""
    removed = 0
    for tmp in [*out_dir.glob("*/*.tmp"), *out_dir.glob("*.tmp")]:
        try:
            tmp.unlink()
            removed += 1
        except OSError:
            pass
    return removed


class Resumable(NamedTuple):
    """What a rerun needs of a frame already verified: a tuple, not the whole entry, so
    that resuming a run of millions of frames stays small."""

    path: str | None
    actual_crc32: int | None
    content_type: str | None


def _cut_torn_line(index: Path) -> None:
    """Cut a last line the crash left half-written, so that the next append starts fresh."""
    with open(index, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        tail_start = max(0, size - 65536)
        fh.seek(tail_start)
        tail = fh.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        fh.truncate(tail_start + cut + 1 if cut >= 0 else 0)


def _wanted_file(rel: str | None, fmt: str | None) -> bool:
    """Does a verified entry's file serve a run writing ``fmt``? (None: any format.)"""
    if fmt is None or fmt == "none":
        return True
    return rel is not None and rel.endswith(EXTENSIONS[fmt])


def read_verified(out_dir: Path, fmt: str | None = None) -> dict[tuple[str, str], Resumable]:
    """(imageSetId, imageFrameId) → what resuming needs, for frames whose latest entry is
    ``verified`` and whose file (in ``fmt``, when given) is on disk.

    A frame verified by a run with another ``--format`` is downloaded again: its file is
    not the one this run promises. Reads the index line by line; cuts a torn last line.
    """
    index = out_dir / INDEX
    if not index.exists():
        return {}
    _cut_torn_line(index)
    latest: dict[tuple[str, str], Resumable | None] = {}
    with open(index, "rb") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
                key = (entry["imageSetId"], entry["imageFrameId"])
            except (ValueError, KeyError, TypeError):
                continue
            if entry.get("status") != "verified" or not _wanted_file(entry.get("path"), fmt):
                latest[key] = None
                continue
            latest[key] = Resumable(entry.get("path"), entry.get("actualCrc32"),
                                    entry.get("contentType"))
    return {key: r for key, r in latest.items()
            if r is not None and (r.path is None or (out_dir / r.path).is_file())}


class Journal:
    """Appends one line per frame to DIR/index.jsonl (opened for the run's lifetime)."""

    def __init__(self, out_dir: Path, *, resume: bool) -> None:
        self.out_dir = out_dir
        self._fh: IO[bytes] | None = None
        try:
            self._fh = open(out_dir / INDEX, "ab" if resume else "wb")  # noqa: SIM115
        except OSError as exc:
            raise OutputError(f"cannot write {out_dir / INDEX}: {exc.strerror or exc}") from None

    def append_many(self, results: Sequence[FrameResult]) -> None:
        """Several frames' lines in one write, handed to the OS before returning.

        Every frame passed in is already in place on disk, so batching the lines that were
        waiting anyway keeps the journal exact while saving a system call per frame.
        """
        assert self._fh is not None
        if not results:
            return
        lines = "".join(
            json.dumps(_entry(result, self.out_dir), separators=(",", ":")) + "\n"
            for result in results
        )
        try:
            self._fh.write(lines.encode())
            self._fh.flush()
        except OSError as exc:
            raise OutputError(
                f"cannot append to {self.out_dir / INDEX}: {exc.strerror or exc}",
                hint="free some disk space and run again; verified frames are kept",
            ) from None

    def close(self) -> None:
        if self._fh is None:
            return
        fh, self._fh = self._fh, None
        try:
            fh.flush()
            os.fsync(fh.fileno())
        except OSError:
            pass  # a full disk: the lines that made it are the journal; resume cuts a torn one
        finally:
            # Closing flushes the same unwritable buffer once more; append reported it.
            with contextlib.suppress(OSError):
                fh.close()


def write_summary(out_dir: Path, document: dict[str, Any]) -> None:
    """summary.json, written atomically."""
    target = out_dir / SUMMARY
    tmp = target.with_name(SUMMARY + ".tmp")
    try:
        tmp.write_text(json.dumps(document, indent=2) + "\n")
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(
            f"cannot write {target}: {exc.strerror or exc}",
            hint="free some disk space (or fix the folder's permissions); the frames in "
            "index.jsonl are kept and a rerun does not download them again",
        ) from None
