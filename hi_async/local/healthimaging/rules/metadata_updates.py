"""UpdateImageSetMetadata's attribute documents: their rules and how they change a document.

Pure functions over the metadata document (the reference page's shape, SchemaVersion 1.1);
the backend calls :func:`apply_updates` inside its transaction. Sources, from the AWS
HealthImaging developer guide ("Updating image set metadata", "DICOM metadata
constraints"), the API reference of UpdateImageSetMetadata and the AWS CLI's examples:

- Without ``force``, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID and StudyID cannot
  be updated, nor instance-level private data elements added, updated or removed.
- On a primary image set, Patient- and Series-level attributes cannot be updated, and
  StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID not even with ``force``.
- SQ (nested) and multi-valued attributes cannot be updated without ``force``.
- Attributes cannot be updated for a series (or instance) the metadata does not hold, nor
  across modules, nor the attributes HealthImaging generates (SchemaVersion, DatastoreID,
  ImageSetID, ImageFrames and their checksums, sizes and pixel value ranges).
- Each attribute document is at most 10000 bytes.

Where the sources are silent the emulator refuses rather than guesses, so that code
written against it does not meet a refusal it never saw; each such place says so.
Refusals are synchronous ValidationExceptions: the guide also allows a failed update to
end UPDATE_FAILED with a ``message``, but does not say which failures do.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from ..apierrors import ValidationException

#: The service's limit on each of removableAttributes and updatableAttributes.
MAX_DOCUMENT_BYTES = 10_000
#: Attributes that only ``force`` lets an update touch.
FORCE_ONLY = frozenset({"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "StudyID"})
#: Of those, the ones ``force`` still cannot change on a primary image set.
PRIMARY_LOCKED = frozenset({"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"})

_TAG = re.compile(r"[0-9A-Fa-f]{8}")
#: What an attribute document may hold at each level; the rest is generated or misplaced.
_MEMBERS = {
    "root": ("Patient", "Study"),
    "Patient": ("DICOM",),
    "Study": ("DICOM", "Series"),
    "Series": ("DICOM", "Instances"),
    "Instance": ("DICOM", "DICOMVRs"),
}
_CHILDREN = {"Study": ("Series", "Series"), "Series": ("Instances", "Instance")}


def is_private_tag(key: str) -> bool:
    """A private data element: an 8-hex-digit tag whose group number is odd."""
    return bool(_TAG.fullmatch(key)) and int(key[:4], 16) % 2 == 1


def parse_document(name: str, raw: bytes | str) -> dict[str, Any]:
    """One of the two attribute documents, as the JSON object it must be."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_DOCUMENT_BYTES:
        raise ValidationException(
            f"{name} is {size} bytes; the service accepts at most {MAX_DOCUMENT_BYTES}")
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        raise ValidationException(f"{name} is not valid JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise ValidationException(f"{name} must be a JSON object")
    spec.pop("SchemaVersion", None)
    return spec


def apply_updates(doc: dict[str, Any], removable: dict[str, Any] | None,
                  updatable: dict[str, Any] | None, *, force: bool,
                  primary: bool) -> dict[str, Any]:
    """A copy of ``doc`` with the removals, then the updates, applied; refuses what the
    service refuses (see the module docstring) with a ValidationException."""
    out = copy.deepcopy(doc)
    rules = _Rules(force=force, primary=primary)
    if removable is not None:
        rules.remove(out, removable, "root", "")
    if updatable is not None:
        rules.update(out, updatable, "root", "")
    return out


class _Rules:
    """One walk over an attribute document, level by level, beside the metadata."""

    def __init__(self, *, force: bool, primary: bool) -> None:
        self.force = force
        self.primary = primary

    # -- shared checks -----------------------------------------------------------------
    def _members(self, spec: Any, level: str, path: str, name: str) -> dict[str, Any]:
        where = path or "the document"
        if not isinstance(spec, dict):
            raise ValidationException(f"{name}: {where} must be a JSON object")
        allowed = _MEMBERS[level]
        for key in spec:
            if key not in allowed:
                raise ValidationException(
                    f"{name}: {where} cannot hold {key!r}; only {', '.join(allowed)} "
                    "(HealthImaging generates the rest, and attributes stay at their own level)")
        return spec

    def _check_attribute(self, level: str, path: str, attr: str, verb: str) -> None:
        name = f"{path}.{attr}"
        if self.primary and level in ("Patient", "Series"):
            # "Updated" in the guide; a removal changes the attribute too, so it is refused
            # as well.
            raise ValidationException(
                f"cannot change {name}: Patient- and Series-level "
                "attributes of a primary image set are not updatable; change them on a "
                "non-primary image set (CopyImageSet makes one)")
        if is_private_tag(attr):
            if level != "Instance":
                # The sources let force touch instance-level private elements only.
                raise ValidationException(
                    f"cannot change private data element {name}: private elements are "
                    "updatable only at the instance level")
            if not self.force:
                raise ValidationException(
                    f"{verb} private data element {name} needs force=true")
        if attr in FORCE_ONLY:
            if self.primary and attr in PRIMARY_LOCKED:
                raise ValidationException(
                    f"cannot change {name} of a primary image set, even with force=true; "
                    "change it on a non-primary image set (CopyImageSet makes one)")
            if not self.force:
                raise ValidationException(f"{verb} {name} needs force=true")

    # -- removal -----------------------------------------------------------------------
    def remove(self, dst: dict[str, Any], spec: Any, level: str, path: str) -> None:
        for key, value in self._members(spec, level, path, "removableAttributes").items():
            here = f"{path}.{key}" if path else key
            if key in ("DICOM", "DICOMVRs"):
                self._remove_attributes(dst.get(key) or {}, value, level, here)
            elif key in _CHILDREN.get(level, ()):
                self._remove_children(dst.setdefault(key, {}), value, _CHILDREN[level][1], here)
            else:
                self.remove(dst[key], value, key, here)

    def _remove_attributes(self, dst: dict[str, Any], spec: Any, level: str,
                           path: str) -> None:
        if not isinstance(spec, dict) or not spec:
            raise ValidationException(
                f"removableAttributes: {path} must name the attributes to remove, "
                "each with its current value")
        for attr, expected in spec.items():
            if attr not in dst:
                # Silent on a missing attribute; refusing keeps a typo from passing unseen.
                raise ValidationException(
                    f"removableAttributes: {path} has no attribute {attr} to remove")
            self._check_attribute(level, path, attr, "removing")
            if dst[attr] != expected:
                raise ValidationException(
                    f"removableAttributes: {path}.{attr} is {dst[attr]!r}, not {expected!r}; "
                    "an attribute is removed only when its current value is given")
            del dst[attr]

    def _remove_children(self, dst: dict[str, Any], spec: Any, level: str, path: str) -> None:
        if not isinstance(spec, dict):
            raise ValidationException(f"removableAttributes: {path} must be a JSON object")
        for uid, sub in spec.items():
            here = f"{path}[{uid}]"
            if uid not in dst:
                raise ValidationException(
                    f"removableAttributes: the image set has no {level.lower()} {uid}")
            if sub == {}:
                # Removing a whole series or instance: the sources do not say whether this
                # needs force; AWS's CLI example of it passes --force, so the emulator
                # asks for it too.
                if not self.force:
                    raise ValidationException(
                        f"removing {level.lower()} {here} needs force=true")
                del dst[uid]
            else:
                self.remove(dst[uid], sub, level, here)

    # -- updates -----------------------------------------------------------------------
    def update(self, dst: dict[str, Any], spec: Any, level: str, path: str) -> None:
        for key, value in self._members(spec, level, path, "updatableAttributes").items():
            here = f"{path}.{key}" if path else key
            if key in ("DICOM", "DICOMVRs"):
                self._update_attributes(dst.setdefault(key, {}), value, level, here)
            elif key in _CHILDREN.get(level, ()):
                self._update_children(dst.setdefault(key, {}), value, _CHILDREN[level][1], here)
            else:
                self.update(dst.setdefault(key, {}), value, key, here)

    def _update_attributes(self, dst: dict[str, Any], spec: Any, level: str,
                           path: str) -> None:
        if not isinstance(spec, dict):
            raise ValidationException(f"updatableAttributes: {path} must be a JSON object")
        for attr, value in spec.items():
            self._check_attribute(level, path, attr, "updating")
            if isinstance(value, dict):
                raise ValidationException(
                    f"updatableAttributes: {path}.{attr} must be a value, a list of values "
                    "or null, not an object")
            if isinstance(value, list) and not self.force:
                raise ValidationException(
                    f"updating {path}.{attr} (a sequence or multi-valued attribute) needs "
                    "force=true")
            dst[attr] = copy.deepcopy(value)

    def _update_children(self, dst: dict[str, Any], spec: Any, level: str, path: str) -> None:
        if not isinstance(spec, dict):
            raise ValidationException(f"updatableAttributes: {path} must be a JSON object")
        uid_attr = "SeriesInstanceUID" if level == "Series" else "SOPInstanceUID"
        for uid, sub in spec.items():
            if uid not in dst:
                raise ValidationException(
                    f"updatableAttributes: the image set has no {level.lower()} {uid}; "
                    "an update cannot add one")
            self.update(dst[uid], sub, level, f"{path}[{uid}]")
            new_uid = ((sub or {}).get("DICOM") or {}).get(uid_attr)
            if new_uid is not None and new_uid != uid:
                self._rekey(dst, uid, str(new_uid), level)

    @staticmethod
    def _rekey(dst: dict[str, Any], old: str, new: str, level: str) -> None:
        # The document keys series and instances by their UIDs; the sources do not say
        # what a forced UID change does to the key, so the emulator keeps key and UID equal.
        if new in dst:
            raise ValidationException(
                f"updatableAttributes: the image set already holds {level.lower()} {new}")
        dst[new] = dst.pop(old)
