"""Image set metadata attributes → pydicom data elements: the document's conventions, reversed.

The metadata document (reference page, "Metadata") names attributes by keyword and
private or unnamed ones by their 8-hex-digit tag; empty values are ``null``; multi-valued
attributes are arrays; IS and DS values are the strings as written in the file (pad space
included); US, SS, UL, SL, FL and FD values are numbers; person names are plain strings;
binary values are base64; sequences are arrays of objects of the same kind. Each is turned
back into the element the file had, value for value: IS/DS strings are kept as written
(pydicom writes ``original_string``), so a value like ``"1 "`` comes back byte for byte.

The value representation of each element comes from, in this order:

1. the instance's ``DICOMVRs`` hints (the service gives the VR of private and unnamed
   elements there, for the instance level);
2. pydicom's data dictionary for public tags, and its private dictionary when the block's
   private creator is known; ambiguous VRs (``US or SS``, ``OB or OW``, ``US or OW``) are
   settled by the value's JSON type and PixelRepresentation, as PS3.5 section 6.2 does;
3. the JSON value itself, for private elements the hints do not cover (the service gives
   no VRs for elements inside sequences): an array of objects is SQ, integers SL or UL,
   other numbers FD, text LO, LT or UT by length. A binary private value inside a sequence
   is indistinguishable from text here and comes back as text; the paths of every VR
   guessed this way are collected in :attr:`Rebuild.inferred`.

A value that is an object with a ``BulkDataURI`` (the DICOMweb form of a value held by
reference) cannot be read from the document: the element is left out and its path goes
to :attr:`Rebuild.by_reference` for the file's note (see ``losses.py``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom import config, datadict
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .errors import BadAttribute

_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")
BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
_INT_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
_FLOAT_VRS = frozenset({"FL", "FD"})
_NUMBER_STRING_VRS = frozenset({"IS", "DS"})
#: Longest LO value (PS3.5 table 6.2-1); longer inferred text becomes LT, then UT.
_LO_MAX, _LT_MAX = 64, 10240


@dataclass
class Rebuild:
    """What one instance's conversion needs to know and what it found out on the way."""

    #: The instance's ``DICOMVRs``: attribute name → VR.
    vr_hints: Mapping[str, str]
    #: PixelRepresentation of the instance, to settle ``US or SS`` (0 when absent).
    pixel_representation: int = 0
    #: Paths of elements held by reference (``BulkDataURI``), left out of the dataset.
    by_reference: list[str] = field(default_factory=list)
    #: Paths of elements whose VR was inferred from the JSON value.
    inferred: list[str] = field(default_factory=list)


def tag_of(name: str) -> int:
    """The tag an attribute name stands for: a keyword, or 8 hex digits."""
    if _HEX_TAG.fullmatch(name):
        return int(name, 16)
    tag = datadict.tag_for_keyword(name)
    if tag is None:
        raise BadAttribute(f"the metadata names an attribute {name!r} that is neither a "
                           "DICOM keyword nor an 8-hex-digit tag",
                           hint="the image set metadata is damaged or from a newer DICOM "
                           "dictionary than pydicom's; update pydicom")
    return int(tag)


def dataset_from_attributes(attrs: Mapping[str, Any], rebuild: Rebuild,
                            path: str = "") -> Dataset:
    """One object of the document (a level's ``DICOM``, or a sequence item) as a Dataset."""
    ds = Dataset()
    for name, value in attrs.items():
        where = f"{path}{name}"
        tag = tag_of(name)
        if isinstance(value, Mapping):
            if "BulkDataURI" in value:
                rebuild.by_reference.append(where)
                continue
            if "InlineBinary" not in value:
                raise BadAttribute(f"attribute {where} is an object, not a value")
            value = value["InlineBinary"]
        vr = _vr_of(tag, name, value, attrs, rebuild, where)
        ds.add(_element(tag, vr, value, rebuild, where))
    return ds


def _vr_of(tag: int, name: str, value: Any, attrs: Mapping[str, Any], rebuild: Rebuild,
           where: str) -> str:
    # DICOMVRs covers the instance level only: a path with "/" is inside a sequence.
    hinted = rebuild.vr_hints.get(name) if "/" not in where else None
    if hinted:
        return _settle(str(hinted), value, attrs, rebuild)
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 == 1 and 0x0010 <= element <= 0x00FF:
        return "LO"  # a private creator (PS3.5 section 7.8.1)
    known = _private_vr(tag, attrs) if group % 2 == 1 else _public_vr(tag)
    if known:
        return _settle(known, value, attrs, rebuild)
    rebuild.inferred.append(where)
    return _infer(value)


def _public_vr(tag: int) -> str | None:
    try:
        # Also knows the repeating groups (60xx overlays, 50xx curves) by their mask.
        return str(datadict.dictionary_VR(tag))
    except KeyError:
        return None


def _private_vr(tag: int, attrs: Mapping[str, Any]) -> str | None:
    """The private dictionary's VR for ``tag``, given the creator in the same object."""
    group, block = tag >> 16, (tag >> 8) & 0xFF
    if tag & 0xFFFF < 0x1000:
        return None
    for key in (f"{group:04X}00{block:02X}", f"{group:04x}00{block:02x}"):
        creator = attrs.get(key)
        if isinstance(creator, str):
            try:
                vr = str(datadict.private_dictionary_VR(tag, creator.strip()))
            except KeyError:
                return None
            return vr if vr != "UN" else None
    return None


def _settle(vr: str, value: Any, attrs: Mapping[str, Any], rebuild: Rebuild) -> str:
    """One VR for an ambiguous dictionary entry, given the value and its neighbours."""
    if " or " not in vr:
        return vr
    options = vr.split(" or ")
    if isinstance(value, str) or (value is None and "US" not in options):
        # Binary values are base64 text; OW is the choice PS3.5 makes for these.
        return "OW" if "OW" in options else options[0]
    numbers = value if isinstance(value, list) else [value]
    if any(isinstance(n, int) and n < 0 for n in numbers):
        return "SS"
    if any(isinstance(n, int) and n > 0x7FFF for n in numbers):
        return "US"
    representation = attrs.get("PixelRepresentation", rebuild.pixel_representation)
    signed = representation == 1 and "SS" in options
    return "SS" if signed else "US"


def _infer(value: Any) -> str:
    """A VR for a private element the metadata gives no VR for (see the module docstring)."""
    items = value if isinstance(value, list) else [value]
    present = [v for v in items if v is not None]
    if not present:
        return "UN"
    if all(isinstance(v, Mapping) for v in present):
        return "SQ"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "SL" if min(present) < 0 else "UL"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "FD"
    texts = [str(v) for v in present]
    if all(len(t) <= _LO_MAX and "\\" not in t for t in texts):
        return "LO"
    return "LT" if len(items) == 1 and len(texts[0]) <= _LT_MAX else "UT"


def _element(tag: int, vr: str, value: Any, rebuild: Rebuild, where: str) -> DataElement:
    converted = _convert(vr, value, rebuild, where)
    try:
        # The values are the file's own, checked when it was imported; validating them
        # again here would only turn a non-conformance the file already had into noise.
        return DataElement(tag, vr, converted, validation_mode=config.IGNORE)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadAttribute(f"attribute {where} ({vr}) has a value pydicom refuses: "
                           f"{value!r} ({exc})") from None


def _convert(vr: str, value: Any, rebuild: Rebuild, where: str) -> Any:
    if vr == "SQ":
        return _sequence(value, rebuild, where)
    if value is None:
        return None
    if vr in BINARY_VRS:
        return _binary(value, where)
    if isinstance(value, list):
        return [_scalar(vr, v, where) for v in value]
    return _scalar(vr, value, where)


def _sequence(value: Any, rebuild: Rebuild, where: str) -> Sequence:
    if value is None:
        return Sequence([])
    items = value if isinstance(value, list) else [value]
    datasets = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise BadAttribute(f"item {index} of sequence {where} is not an object: {item!r}")
        datasets.append(dataset_from_attributes(item, rebuild, f"{where}[{index}]/"))
    return Sequence(datasets)


def _binary(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise BadAttribute(f"binary attribute {where} is not a base64 string: {value!r}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadAttribute(f"binary attribute {where} is not valid base64: {exc}") from None


def _scalar(vr: str, value: Any, where: str) -> Any:
    """One value of a (possibly multi-valued) element, in the type pydicom expects."""
    if isinstance(value, bool | Mapping | list):
        raise BadAttribute(f"attribute {where} ({vr}) has a value of the wrong kind: "
                           f"{value!r}")
    if vr in _INT_VRS:
        return _integer(value, vr, where)
    if vr in _FLOAT_VRS:
        if value is None:
            raise BadAttribute(f"attribute {where} ({vr}) has an empty value in a list")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise BadAttribute(f"attribute {where} ({vr}) is not a number: {value!r}") from None
    if vr == "AT":
        return _tag_value(value, where)
    if value is None:
        return ""  # an empty value inside a multi-valued text element
    if vr in _NUMBER_STRING_VRS and isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return value if isinstance(value, str) else str(value)


def _integer(value: Any, vr: str, where: str) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise BadAttribute(f"attribute {where} ({vr}) is not an integer: {value!r}")


def _tag_value(value: Any, where: str) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _HEX_TAG.fullmatch(value):
        return int(value, 16)
    raise BadAttribute(f"attribute {where} (AT) is not an 8-hex-digit tag: {value!r}")
