"""index.jsonl, the journal of frames safely on disk, and summary.json.

A frame's line is appended only once its file is stable on disk (see
:mod:`hi_async.durability`), so after a crash at any moment the index lists only frames
whose files are whole; :mod:`hi_async.resume` reads it back.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from .errors import OutputError
from .libc import fallocate as _FALLOCATE
from .model import FrameResult

INDEX = "index.jsonl"
SUMMARY = "summary.json"


def _json(value: str | int | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return _quote(value)


#: JSON's string encoder (C-accelerated): every string field goes through it.
_quote = json.encoder.encode_basestring_ascii


#: FrameRef's dtypes by name (numpy's names for them), without importing numpy here.
_DTYPE_NAMES = {"|u1": "uint8", "|i1": "int8", "<u2": "uint16", "<i2": "int16",
                "<u4": "uint32", "<i4": "int32", "<u8": "uint64", "<i8": "int64"}


@functools.lru_cache(maxsize=64)
def _dtype_name(dtype: str) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        import numpy as np

        name = np.dtype(dtype).name
    return name


def _relative(path: Path, out_dir: Path) -> str:
    """``path`` relative to ``out_dir`` (a frame's path is built under it), POSIX style."""
    text, root = str(path), str(out_dir)
    if text.startswith(root + os.sep):
        return text[len(root) + 1:].replace(os.sep, "/")
    return Path(os.path.relpath(path, out_dir)).as_posix()


def entry_line(result: FrameResult, out_dir: Path) -> str:
    """The frame's index.jsonl line (with its newline), the fields in contract order.

    Formatted directly rather than through ``json.dumps`` of a dict: the journal writes
    one line per frame, thousands a second.
    """
    ref = result.ref
    path = _relative(result.path, out_dir) if result.path is not None else None
    return (
        f'{{"imageSetId":{_quote(ref.image_set_id)},"imageFrameId":{_quote(ref.image_frame_id)}'
        f',"studyInstanceUid":{_quote(ref.study_instance_uid)}'
        f',"seriesInstanceUid":{_quote(ref.series_instance_uid)}'
        f',"sopInstanceUid":{_quote(ref.sop_instance_uid)},"frameNumber":{ref.frame_number}'
        f',"rows":{ref.rows},"columns":{ref.columns}'
        f',"samplesPerPixel":{ref.samples_per_pixel},"dtype":{_quote(_dtype_name(ref.dtype))}'
        f',"contentType":{_json(result.content_type)},"path":{_json(path)}'
        f',"expectedCrc32":{_json(ref.expected_crc32)}'
        f',"actualCrc32":{_json(result.actual_crc32)},"status":{_quote(str(result.status))}'
        f',"error":{_json(result.error)},"fileBytes":{_json(result.file_bytes)}'
        f',"fileCrc32":{_json(result.file_crc32)}}}\n'
    )


#: Disk space kept ahead of the journal's end (about 700 lines).
RESERVE = 1 << 18

_FALLOC_FL_KEEP_SIZE = 1


class Journal:
    """Appends one line per frame to DIR/index.jsonl (opened for the run's lifetime).

    Lines are appended after their frames' files are stable, so a disk that fills up
    would fill up before the lines of the frames already on it are written. So the
    journal keeps :data:`RESERVE` bytes of disk allocated beyond its end (where the file
    system can: ``fallocate`` with ``KEEP_SIZE``), and those lines always fit.
    """

    def __init__(self, out_dir: Path, *, resume: bool) -> None:
        self.out_dir = out_dir
        self._fh: IO[bytes] | None = None
        try:
            self._fh = open(out_dir / INDEX, "ab" if resume else "wb")  # noqa: SIM115
        except OSError as exc:
            raise OutputError(f"cannot write {out_dir / INDEX}: {exc.strerror or exc}") from None
        self._reserved_to = 0
        self._reserve()

    def _reserve(self) -> None:
        """Keep RESERVE bytes allocated past the end (best effort: a full disk, or a file
        system without fallocate, simply gets no reserve)."""
        assert self._fh is not None
        end = self._fh.tell()
        if _FALLOCATE is None or self._reserved_to - end >= RESERVE // 2:
            return
        if _FALLOCATE(self._fh.fileno(), _FALLOC_FL_KEEP_SIZE, end, RESERVE) == 0:
            self._reserved_to = end + RESERVE

    def append_many(self, results: Sequence[FrameResult]) -> None:
        """Several frames' lines in one write, handed to the OS before returning (not yet
        stable: :meth:`sync` makes them so). Every frame passed in must be stable already.
        """
        assert self._fh is not None
        if not results:
            return
        lines = "".join(entry_line(result, self.out_dir) for result in results)
        try:
            self._fh.write(lines.encode())
            self._fh.flush()
            self._reserve()
        except OSError as exc:
            raise OutputError(
                f"cannot append to {self.out_dir / INDEX}: {exc.strerror or exc}",
                hint="free some disk space and run again; verified frames are kept",
            ) from None

    def sync(self) -> None:
        """Make every line appended so far stable (fdatasync)."""
        assert self._fh is not None
        try:
            self._fh.flush()
            os.fdatasync(self._fh.fileno())
        except OSError as exc:
            raise OutputError(
                f"cannot sync {self.out_dir / INDEX}: {exc.strerror or exc}",
                hint="free some disk space and run again; verified frames are kept",
            ) from None

    def close(self) -> None:
        if self._fh is None:
            return
        fh, self._fh = self._fh, None
        try:
            fh.flush()
            if self._reserved_to:
                os.ftruncate(fh.fileno(), fh.tell())  # hand the unused reserve back
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
