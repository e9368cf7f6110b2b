"""Resuming from index.jsonl: which frames a rerun need not fetch again.

A frame is skipped only when its latest line says ``verified``, the line is a
well-formed entry, its path is the file the frame's IDs name inside the output folder
(in the format this run writes; for ``dcm``, its instance's file
``<imageSetId>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``), and the file found there is
the one that was written:
its size and CRC32 equal those the journal recorded at write time. Anything else is
fetched again: a file bit-flipped, replaced or cut short since, a line from another tool,
an entry whose path points anywhere else. ``verify_existing`` also decodes each file and
checks its pixels against the metadata's checksum, as a download does.

A line that is not a well-formed entry is skipped and counted (the run warns); a torn
last line (a crash mid-append) is cut off so that the next append starts fresh, however
long it is; leftover ``*.tmp`` files are removed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .errors import OutputError
from .journal import INDEX
from .paths import EXTENSIONS, is_service_id, is_uid_name

#: How far back a torn last line is looked for at a time.
_TAIL_BLOCK = 1 << 16


class Resumable(NamedTuple):
    """What a rerun needs of a frame already verified: a tuple, not the whole entry, so
    that resuming a run of millions of frames stays small."""

    path: str | None
    actual_crc32: int | None
    content_type: str | None
    file_bytes: int | None = None
    file_crc32: int | None = None


@dataclass
class ResumeReport:
    """What reading the journal found, for the run's warnings."""

    malformed_lines: int = 0
    #: Frames journaled as verified whose file failed a check: fetched again.
    files_failed: int = 0
    notes: list[str] = field(default_factory=list)

    def warnings(self) -> list[str]:
        out = list(self.notes)
        if self.malformed_lines:
            out.append(f"{self.malformed_lines} line(s) of {INDEX} are not well-formed "
                       "entries and were skipped")
        if self.files_failed:
            out.append(f"{self.files_failed} frame(s) journaled as verified had a missing, "
                       "changed or unchecked file and are fetched again")
        return out


def remove_leftover_tmp(out_dir: Path) -> int:
    """Delete ``*.tmp`` files a crashed run left in the output folder; returns how many.

    Frame files sit one level down (``<imageSetId>/``); DICOM files, volumes and
    previews two (``<imageSetId>/<SeriesInstanceUID>/``, ``<imageSetId>/volumes/``,
    ``<imageSetId>/previews/``)."""
    removed = 0
    for tmp in [*out_dir.glob("*/*/*.tmp"), *out_dir.glob("*/*.tmp"), *out_dir.glob("*.tmp")]:
        try:
            tmp.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def cut_torn_line(index: Path) -> None:
    """Cut a last line a crash left half-written, keeping every complete line before it."""
    with open(index, "r+b") as fh:
        end = fh.seek(0, os.SEEK_END)
        if end == 0:
            return
        fh.seek(end - 1)
        if fh.read(1) == b"\n":
            return
        pos = end
        while pos > 0:
            start = max(0, pos - _TAIL_BLOCK)
            fh.seek(start)
            block = fh.read(pos - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                fh.truncate(start + cut + 1)
                return
            pos = start
        fh.truncate(0)


_OPTIONAL_INT = (int, type(None))
_OPTIONAL_STR = (str, type(None))


def _well_formed(entry: Any) -> bool:
    return (isinstance(entry, dict) and is_service_id(entry.get("imageSetId"))
            and is_service_id(entry.get("imageFrameId"))
            and isinstance(entry.get("status"), str)
            and isinstance(entry.get("path"), _OPTIONAL_STR)
            and isinstance(entry.get("contentType"), _OPTIONAL_STR)
            and all(isinstance(entry.get(k), _OPTIONAL_INT) and not isinstance(
                entry.get(k), bool) for k in ("actualCrc32", "fileBytes", "fileCrc32")))


class _Elsewhere:
    """The entry names a file that is not the frame's own file in this run's format."""


_ELSEWHERE = _Elsewhere()


def _expected_path(entry: dict[str, Any], fmt: str | None) -> str | _Elsewhere | None:
    """The path the entry must name for this run to use it: the frame's own file, in the
    run's format, or None when the run writes no files."""
    path = entry["path"]
    if fmt == "none":
        return None  # a run that writes no files needs only the verification
    if path is None:
        return None if fmt is None else _ELSEWHERE
    if fmt == "dcm" or (fmt is None and path.endswith(".dcm")):
        return path if path == _instance_file(entry) else _ELSEWHERE
    base = f"{entry['imageSetId']}/{entry['imageFrameId']}"
    wanted = [base + EXTENSIONS[fmt]] if fmt else [base + ext for ext in EXTENSIONS.values()]
    return path if path in wanted else _ELSEWHERE


def _instance_file(entry: dict[str, Any]) -> str | None:
    """The DICOM file of the entry's instance (``--format dcm``), if its UIDs can name one."""
    series, sop = entry.get("seriesInstanceUid"), entry.get("sopInstanceUid")
    if not (is_uid_name(series) and is_uid_name(sop)):
        return None
    return f"{entry['imageSetId']}/{series}/{sop}.dcm"


def read_verified(out_dir: Path, fmt: str | None = None, *, verify_existing: bool = False,
                  report: ResumeReport | None = None) -> dict[tuple[str, str], Resumable]:
    """(imageSetId, imageFrameId) → what resuming needs, for the frames a rerun writing
    ``fmt`` (None: any format) can skip. Blocking (reads files): call it off the loop."""
    report = report if report is not None else ResumeReport()
    index = out_dir / INDEX
    if not os.path.lexists(index):
        return {}
    if not index.is_file():
        raise OutputError(f"{index} is not a file",
                          hint="move it out of the way (it is where the journal of "
                          "verified frames goes) or choose another --out")
    cut_torn_line(index)
    latest: dict[tuple[str, str], dict[str, Any] | None] = {}
    with open(index, "rb") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not _well_formed(entry):
                report.malformed_lines += 1
                continue
            key = (entry["imageSetId"], entry["imageFrameId"])
            latest[key] = entry if entry["status"] == "verified" else None
    out: dict[tuple[str, str], Resumable] = {}
    # A DICOM file holds all its instance's frames, journaled one after the other: the
    # file is checked once for them all (the last answer is kept, nothing more).
    last: list[Any] = [None, False]

    def is_as_written(resumable: Resumable) -> bool:
        file = (resumable.path, resumable.file_bytes, resumable.file_crc32)
        if last[0] != file:
            last[:] = [file, _file_is_as_written(out_dir, resumable)]
        return bool(last[1])

    for key, entry in latest.items():
        if entry is None:
            continue
        path = _expected_path(entry, fmt)
        if isinstance(path, _Elsewhere):
            continue
        resumable = Resumable(path, entry["actualCrc32"], entry["contentType"],
                              entry.get("fileBytes"), entry.get("fileCrc32"))
        if path is not None and not (
                is_as_written(resumable)
                and (not verify_existing or _decodes_to_checksum(out_dir, entry))):
            report.files_failed += 1
            continue
        out[key] = resumable
    return out


def _file_is_as_written(out_dir: Path, entry: Resumable) -> bool:
    """The file exists with the size and CRC32 the journal recorded when it was written."""
    from .output.frames import file_checksum

    assert entry.path is not None
    if entry.file_bytes is None or entry.file_crc32 is None:
        return False  # written without a checksum on record: not trusted
    path = os.path.join(out_dir, entry.path)
    try:
        if os.stat(path).st_size != entry.file_bytes:
            return False
        return file_checksum(path) == (entry.file_bytes, entry.file_crc32)
    except OSError:
        return False


def _decodes_to_checksum(out_dir: Path, entry: dict[str, Any]) -> bool:
    """The file's pixels have the checksum the metadata gives for the frame."""
    from .codecs import crc32
    from .verify import pixels_of_file

    expected = entry.get("expectedCrc32")
    if not isinstance(expected, int):
        return False
    path = os.path.join(out_dir, entry["path"])
    try:
        if path.endswith(".dcm"):  # the frame, in its instance's DICOM file (--format dcm)
            from .dicom.readback import frame_pixels

            crc = crc32(frame_pixels(path, entry))
        else:
            crc = pixels_of_file(path, entry)
    except Exception:  # a file that cannot be read back is fetched again
        return False
    return crc == expected
