"""SearchImageSets: EQUAL and BETWEEN filters on the documented attributes, and sort.

Deleted image sets are never found. Timestamps arrive as epoch seconds (botocore's
rest-json form); DICOMStudyDateAndTime compares as the text ``YYYYMMDD`` +
``HHMMSS.ffffff``, which orders correctly as a string.
"""

from __future__ import annotations

from typing import Any

from ..apierrors import ValidationException
from ..models import ImageSet
from .datastores import DatastoreRules

#: search attribute → DICOMTags key of the summary (None: a property of the image set)
_TEXT_KEYS = {
    "DICOMPatientId": "DICOMPatientId",
    "DICOMAccessionNumber": "DICOMAccessionNumber",
    "DICOMStudyId": "DICOMStudyId",
    "DICOMStudyInstanceUID": "DICOMStudyInstanceUID",
    "DICOMSeriesInstanceUID": "DICOMSeriesInstanceUID",
}
_RANGE_KEYS = ("createdAt", "updatedAt", "DICOMStudyDateAndTime")
_SORT_FIELDS = ("updatedAt", "createdAt", "DICOMStudyDateAndTime")


def _norm_time(value: str) -> str:
    """DICOM TM (``HH``, ``HHMM``, ``HHMMSS[.f…]``) as ``HHMMSS[.f…]``, so that text order
    is time order."""
    whole, dot, fraction = value.strip().partition(".")
    return whole.ljust(6, "0")[:6] + (dot + fraction if fraction else "")


def _study_date_time(value: Any, bound: str) -> str:
    """The filter value as the search key; a value without a time stands for the whole
    day: its start as a lower bound, its end as an upper bound, the date for EQUAL."""
    if not isinstance(value, dict) or not value.get("DICOMStudyDate"):
        raise ValidationException(
            "DICOMStudyDateAndTime needs DICOMStudyDate (YYYYMMDD) and optionally DICOMStudyTime")
    date, time = str(value["DICOMStudyDate"]), str(value.get("DICOMStudyTime") or "")
    if time:
        return date + _norm_time(time)
    return {"lo": date + "000000", "hi": date + "235959.999999"}.get(bound, date)


def _key_of(iset: ImageSet, attribute: str) -> Any:
    if attribute in _TEXT_KEYS:
        return iset.tags_dicom.get(_TEXT_KEYS[attribute])
    if attribute == "createdAt":
        return iset.created_at
    if attribute == "updatedAt":
        return iset.latest.updated_at
    if attribute == "isPrimary":
        return iset.latest.is_primary
    tags = iset.tags_dicom
    time = tags.get("DICOMStudyTime") or ""
    return (tags.get("DICOMStudyDate") or "") + (_norm_time(time) if time else "")


def _value(attribute: str, raw: Any, bound: str = "eq") -> Any:
    if attribute == "DICOMStudyDateAndTime":
        return _study_date_time(raw, bound)
    if attribute in ("createdAt", "updatedAt"):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValidationException(f"{attribute} must be a timestamp")
        return float(raw)
    return raw


def _predicate(flt: dict[str, Any]) -> tuple[str, Any]:
    """``(attribute, test)`` for one filter, validated as the service documents."""
    operator, values = flt.get("operator"), flt.get("values") or []
    attrs: set[str] = set()
    for item in values:
        if not isinstance(item, dict) or len(item) != 1:
            raise ValidationException("each filter value must name exactly one attribute")
        attrs.update(item)
    if len(attrs) != 1:
        raise ValidationException("all values of one filter must name the same attribute")
    (attribute,) = attrs
    raw = [item[attribute] for item in values]
    if operator == "EQUAL":
        if len(raw) != 1:
            raise ValidationException("an EQUAL filter takes exactly one value")
        value = _value(attribute, raw[0])
        if attribute == "DICOMStudyDateAndTime" and len(value) == 8:
            return attribute, ("eq_date", value)  # a date alone: any time that day
        return attribute, ("eq", value)
    if operator == "BETWEEN":
        if attribute not in _RANGE_KEYS:
            raise ValidationException(
                f"BETWEEN works on {', '.join(_RANGE_KEYS)}, not on {attribute}")
        if len(raw) != 2:
            raise ValidationException("a BETWEEN filter takes exactly two values")
        return attribute, ("between", _value(attribute, raw[0], "lo"),
                           _value(attribute, raw[1], "hi"))
    raise ValidationException(f"operator must be EQUAL or BETWEEN, got {operator!r}")


class SearchRules(DatastoreRules):
    """SearchImageSets over the image sets of a data store."""

    def search_image_sets(self, datastore_id: str,
                          criteria: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Every matching image set summary, sorted (pagination is the caller's)."""
        criteria = criteria or {}
        filters = criteria.get("filters") or []
        if len(filters) > 2:
            raise ValidationException("SearchImageSets accepts at most 2 filters")
        tests = [_predicate(f) for f in filters]
        sort = criteria.get("sort")
        if sort is not None and (sort.get("sortField") not in _SORT_FIELDS
                                 or sort.get("sortOrder") not in ("ASC", "DESC")):
            raise ValidationException(
                f"sort needs sortField in {_SORT_FIELDS} and sortOrder ASC or DESC")
        with self.lock:
            self.active_datastore(datastore_id)
            found: list[ImageSet] = []
            for iset in list(self.image_sets.values()):
                if iset.datastore_id != datastore_id:
                    continue
                self._settle(iset)
                if iset.latest.state == "DELETED":
                    continue
                if all(self._matches(iset, attr, test) for attr, test in tests):
                    found.append(iset)
            field = sort["sortField"] if sort else "updatedAt"
            descending = sort["sortOrder"] == "DESC" if sort else True
            found.sort(key=lambda s: (_key_of(s, field), s.image_set_id), reverse=descending)
            return [self._summary(s) for s in found]

    @staticmethod
    def _matches(iset: ImageSet, attribute: str, test: tuple[Any, ...]) -> bool:
        key = _key_of(iset, attribute)
        if test[0] == "eq":
            return key == test[1]
        if test[0] == "eq_date":
            return key is not None and key[:8] == test[1]
        return key is not None and test[1] <= key <= test[2]

    @staticmethod
    def _summary(iset: ImageSet) -> dict[str, Any]:
        v = iset.latest
        return {"imageSetId": iset.image_set_id, "version": v.version,
                "createdAt": iset.created_at, "updatedAt": v.updated_at,
                "DICOMTags": dict(iset.tags_dicom), "isPrimary": v.is_primary}
