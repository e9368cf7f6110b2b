"""Non-conformances an import job imports anyway and reports in ``WARNING/warning.ndjson``.

Codes, enum names and resulting behaviour come from AWS's "HealthImaging Warning Codes"
page (developer guide, reference-warning-codes). The "Understanding import jobs" page
shows one record: the code as a decimal number (``"warning_reason_code": 45330``) and a
``type`` spelled ``"InvalidOffsetTable"``, the enum name in PascalCase, which is how we
spell every type. The warning-codes page's decimal column disagrees with its hexadecimal
column for INVALID_UID_FORMAT (0xB201, listed as 45570), INVALID_DICOM_VALUE_LENGTH
(0xB202, listed as 45571) and OTHER (0xBFFF, listed as 47513). We write the hexadecimal
value (0xB201 = 45569), the one that every other row and DICOM's own warning statuses
(0xB000, 0xB006, 0xB007) agree with.

Checked here, by pure functions on a parsed dataset or on the pixel data's bytes:

- INVALID_UID_FORMAT: a UI value that breaks PS3.5 section 9.1 (digits and dots only, no
  empty component, no leading zero in a component other than "0", at most 64 characters),
  in the file meta, the data set or any sequence item.
- INVALID_DICOM_VALUE_LENGTH: a string value longer than its VR allows (PS3.5 table 6.2-1).
- FRAME_NUMBER_MISMATCH: encapsulated pixel data whose items contradict NumberOfFrames:
  fewer fragments than frames (each frame needs one), or a Basic or Extended Offset Table
  that lists another number of frames. The service then keeps the instance but its pixel
  data "cannot be retrieved" as frames; the instance is imported with no image frames.
- INVALID_OFFSET_TABLE: an offset table with the right number of entries that does not
  point at the fragments. When the fragments alone say where each frame is (one fragment
  per frame, or a single frame) the frames are split without the table; otherwise the
  instance is imported with no image frames.

When more fragments than frames come with no offset table at all, where one frame ends is
a guess (pydicom looks for JPEG end-of-image markers); that is not reported here, and the
frame splitter refuses the file if its guess disagrees with NumberOfFrames.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from itertools import pairwise
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.multival import MultiValue

from ..healthimaging.records import ImportWarning

#: The documented warning reasons (hexadecimal column of the warning-codes page).
REASON_CODES: dict[str, int] = {
    "COERCION_OF_DATA_ELEMENTS": 0xB000,
    "ELEMENTS_DISCARDED": 0xB006,
    "SOP_CLASS_DATA_MISMATCH": 0xB007,
    "TRANSCODING_EXCEPTION": 0xB100,
    "FRAMES_EXTRACTION_FAILURE": 0xB110,
    "FRAME_NUMBER_MISMATCH": 0xB111,
    "INVALID_OFFSET_TABLE": 0xB112,
    "UNSUPPORTED_TRANSFER_SYNTAX": 0xB120,
    "INVALID_UID_FORMAT": 0xB201,
    "INVALID_DICOM_VALUE_LENGTH": 0xB202,
    "OTHER": 0xBFFF,
}

#: Longest value of each string VR (PS3.5 table 6.2-1; PN per component group). UI
#: belongs to INVALID_UID_FORMAT; UC, UR and UT have no practical limit.
MAX_VALUE_LENGTH: dict[str, int] = {
    "AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64,
    "LT": 10240, "PN": 64, "SH": 16, "ST": 1024, "TM": 14,
}

UID_MAX_LENGTH = 64
_LISTED = 5  # offending values a message names before counting the rest
_EMPTY_BASIC_OFFSET_TABLE = b"\xfe\xff\x00\xe0\x00\x00\x00\x00"
_NOT_UID_CHARACTER = re.compile(r"[^0-9.]")


def make_warning(reason: str, message: str) -> ImportWarning:
    """A warning for one of the documented reasons, e.g. ``"FRAME_NUMBER_MISMATCH"``."""
    return ImportWarning(REASON_CODES[reason],
                         "".join(word.capitalize() for word in reason.split("_")), message)


# -- attributes ----------------------------------------------------------------------------
def metadata_warnings(ds: Dataset) -> list[ImportWarning]:
    """INVALID_UID_FORMAT and INVALID_DICOM_VALUE_LENGTH for the file meta and data set."""
    elements = list(_walk(ds.file_meta, "")) if getattr(ds, "file_meta", None) else []
    elements += _walk(ds, "")
    bad_uids: list[str] = []
    too_long: list[str] = []
    for path, elem in elements:
        vr = str(elem.VR)
        for value in _strings(elem):
            if vr == "UI" and (why := uid_problem(value)) is not None:
                bad_uids.append(f"{path} {value!r} ({why})")
            elif vr in MAX_VALUE_LENGTH and (why := _length_problem(vr, value)) is not None:
                too_long.append(f"{path} ({why})")
    found = []
    if bad_uids:
        found.append(make_warning("INVALID_UID_FORMAT", _listing(
            bad_uids, "UID value breaks", "UID values break",
            "the DICOM UI value representation (digits and '.', no empty component, no "
            f"leading zero, at most {UID_MAX_LENGTH} characters)")))
    if too_long:
        found.append(make_warning("INVALID_DICOM_VALUE_LENGTH", _listing(
            too_long, "value is", "values are", "longer than its value representation allows")))
    return found


def uid_problem(value: str) -> str | None:
    """Why ``value`` is not a valid DICOM UID, or None when it is one."""
    if len(value) > UID_MAX_LENGTH:
        return f"{len(value)} characters, more than {UID_MAX_LENGTH}"
    if (bad := _NOT_UID_CHARACTER.search(value)) is not None:
        return f"character {bad.group()!r} is neither a digit nor '.'"
    for component in value.split("."):
        if not component:
            return "empty component"
        if len(component) > 1 and component.startswith("0"):
            return f"component {component!r} has a leading zero"
    return None


def _length_problem(vr: str, value: str) -> str | None:
    limit = MAX_VALUE_LENGTH[vr]
    # A person name's limit applies to each component group (alphabetic=ideographic=...).
    longest = max(len(part) for part in value.split("=")) if vr == "PN" else len(value)
    if longest <= limit:
        return None
    return f"{longest} characters, {vr} allows {limit}"


def _listing(items: list[str], one: str, many: str, tail: str) -> str:
    shown = "; ".join(items[:_LISTED])
    more = f"; and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    head = f"1 {one}" if len(items) == 1 else f"{len(items)} {many}"
    return f"{head} {tail}: {shown}{more}"


def _walk(ds: Dataset, prefix: str) -> Iterator[tuple[str, DataElement]]:
    """Every non-sequence element with a readable path, sequence items included."""
    for elem in ds:
        name = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value or ()):
                yield from _walk(item, f"{prefix}{name}[{index}].")
        else:
            yield f"{prefix}{name}", elem


def _strings(elem: DataElement) -> list[str]:
    """An element's non-empty values as the text written in the file (padding removed)."""
    value: Any = elem.value
    if value is None:
        return []
    values = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    out = []
    for v in values:
        text = getattr(v, "original_string", None)
        if text is None:
            text = v
        if isinstance(text, bytes):
            text = text.decode("latin-1")
        text = str(text).rstrip(" \x00")
        if text:
            out.append(text)
    return out


# -- encapsulated pixel data ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FrameLayout:
    """What encapsulated pixel data's items say about its frames, and what to do with it."""

    warning: ImportWarning | None = None
    #: False when the frames cannot be told apart: import the instance with none.
    frames_usable: bool = True
    #: The pixel data with an empty Basic Offset Table in place of a wrong one, to split
    #: without any offset table (the Extended one is to be ignored too); None: keep as is.
    repaired_pixel_data: bytes | None = None


def check_encapsulated(pixel_data: bytes, frames: int, extended_offsets: bytes | None = None,
                       extended_lengths: bytes | None = None) -> FrameLayout:
    """Compare the items of encapsulated pixel data with NumberOfFrames (``frames``)."""
    try:
        basic = parse_basic_offsets(pixel_data)
        starts, lengths = _fragments(pixel_data, 8 + 4 * len(basic))
    except (ValueError, struct.error):
        return FrameLayout()  # broken items: the frame splitter refuses the file, saying why
    if len(starts) < frames:
        return _mismatch(f"NumberOfFrames is {frames} but the pixel data holds only "
                         f"{len(starts)} fragments")
    if extended_offsets is not None:
        name, table = "Extended Offset Table", _u64s(extended_offsets)
    elif basic:
        name, table = "Basic Offset Table", basic
    else:
        return FrameLayout()
    if len(table) != frames:
        return _mismatch(f"NumberOfFrames is {frames} but the {name} lists {len(table)} frames")
    problem = _table_problem(table, starts)
    if problem is None and extended_offsets is not None:
        problem = _extended_problem(table, extended_lengths, starts, lengths)
    if problem is None:
        return FrameLayout()
    usable = len(starts) == frames or frames == 1
    if usable:
        outcome = "the frames were read from the fragments without it"
    else:
        outcome = ("the frames cannot be told apart without it, so the instance was "
                   "imported with no image frames")
    warning = make_warning("INVALID_OFFSET_TABLE",
                           f"the {name} does not match the fragments ({problem}); {outcome}")
    if not usable:
        return FrameLayout(warning, frames_usable=False)
    first = 8 + 4 * len(basic)
    return FrameLayout(warning, repaired_pixel_data=_EMPTY_BASIC_OFFSET_TABLE + pixel_data[first:])


def _mismatch(what: str) -> FrameLayout:
    return FrameLayout(make_warning("FRAME_NUMBER_MISMATCH", f"{what}; the pixel data cannot "
                                    "be split into frames, so the instance was imported with "
                                    "no image frames"), frames_usable=False)


def _fragments(pixel_data: bytes, first: int) -> tuple[list[int], list[int]]:
    """Each fragment's item offset from the first fragment, and each one's length."""
    buffer = BytesIO(pixel_data)
    buffer.seek(first)
    _, offsets = parse_fragments(buffer)
    lengths = [struct.unpack_from("<L", pixel_data, at + 4)[0] for at in offsets]
    return [at - first for at in offsets], lengths


def _u64s(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 8}Q", data[:len(data) // 8 * 8]))


def _table_problem(table: list[int], starts: list[int]) -> str | None:
    if table[0] != 0:
        return f"the first frame's offset is {table[0]}, not 0"
    for index, (before, after) in enumerate(pairwise(table), start=2):
        if after <= before:
            return f"frame {index}'s offset {after} does not follow {before}"
    known = set(starts)
    for index, offset in enumerate(table, start=1):
        if offset not in known:
            return f"frame {index}'s offset {offset} is not where a fragment starts"
    return None


def _extended_problem(table: list[int], extended_lengths: bytes | None, starts: list[int],
                      lengths: list[int]) -> str | None:
    """The Extended Offset Table allows one fragment per frame and needs its lengths."""
    if len(starts) != len(table):
        return (f"it needs one fragment per frame, and the pixel data holds {len(starts)} "
                f"fragments for {len(table)} frames")
    if extended_lengths is None:
        return "ExtendedOffsetTableLengths is missing"
    claimed = _u64s(extended_lengths)
    if len(claimed) != len(table):
        return f"ExtendedOffsetTableLengths lists {len(claimed)} lengths for {len(table)} frames"
    for index, (want, have) in enumerate(zip(claimed, lengths, strict=True), start=1):
        if want != have:
            return f"frame {index}'s length is given as {want} bytes, its fragment holds {have}"
    return None
