"""The image set metadata document: helpers the image set rules share.

The document follows the reference page's shape (SchemaVersion 1.1): ``Patient`` and
``Study`` attributes, the study's ``Series``, their ``Instances`` and each instance's
``ImageFrames``.
"""

from __future__ import annotations

import copy
import gzip
import json
from typing import Any


def gzip_document(doc: dict[str, Any]) -> bytes:
    """The document as the store keeps it: compact JSON, gzipped with no timestamp."""
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), 6, mtime=0)


def merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    """``src`` into ``dst``: objects member by member, any other value replaced by a copy."""
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            merge(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)


def dicom_tags(doc: dict[str, Any]) -> dict[str, Any]:
    """The DICOMTags a search result reports, drawn from the metadata document."""
    patient, study = doc["Patient"]["DICOM"], doc["Study"]["DICOM"]
    series_map = doc["Study"].get("Series", {})
    first: dict[str, Any] = next(iter(series_map.values()), {})
    series = first.get("DICOM", {}) if series_map else {}
    n_instances = sum(len(s.get("Instances", {})) for s in series_map.values())

    def text(d: dict[str, Any], key: str) -> str | None:
        value = d.get(key)
        return None if value is None else str(value).strip()

    number = text(series, "SeriesNumber")
    tags = {
        "DICOMPatientId": text(patient, "PatientID"),
        "DICOMPatientName": text(patient, "PatientName"),
        "DICOMPatientBirthDate": text(patient, "PatientBirthDate"),
        "DICOMPatientSex": text(patient, "PatientSex"),
        "DICOMStudyInstanceUID": text(study, "StudyInstanceUID"),
        "DICOMStudyId": text(study, "StudyID"),
        "DICOMStudyDescription": text(study, "StudyDescription"),
        "DICOMNumberOfStudyRelatedSeries": len(series_map),
        "DICOMNumberOfStudyRelatedInstances": n_instances,
        "DICOMAccessionNumber": text(study, "AccessionNumber"),
        "DICOMSeriesInstanceUID": text(series, "SeriesInstanceUID"),
        "DICOMSeriesModality": text(series, "Modality"),
        "DICOMSeriesBodyPart": text(series, "BodyPartExamined"),
        "DICOMSeriesNumber": int(number) if number and number.lstrip("-").isdigit() else None,
        "DICOMStudyDate": text(study, "StudyDate"),
        "DICOMStudyTime": text(study, "StudyTime"),
    }
    return {k: v for k, v in tags.items() if v is not None}


def frame_ids(doc: dict[str, Any]) -> list[str]:
    """The IDs of every image frame the document lists."""
    return [f["ID"] for s in doc["Study"].get("Series", {}).values()
            for i in s.get("Instances", {}).values() for f in i.get("ImageFrames", [])]
