"""A pydicom Dataset → the attribute dictionaries of the image set metadata document.

The value conventions follow what HealthImaging returns (see the project's reference
page): attributes by keyword; private tags by 8-hex-digit tag with their VR in
``DICOMVRs``; empty values ``null``; multi-valued attributes as arrays; IS/DS as the
strings written in the file; US/SS/UL/SL/FL/FD as numbers; person names as plain
strings; sequences as arrays of keyword objects; binary values base64. Bulk binary
elements (pixel data, and any other binary value over ``BULK_LIMIT`` bytes such as
overlays) are left out; ``PixelData`` itself appears as ``null``.

Which attributes sit at the Patient, Study and Series levels is decided by the DICOM
information model's modules (Patient; General Study and Patient Study; General Series);
everything else, file meta included, belongs to the instance.
"""

from __future__ import annotations

import base64
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

#: Binary values larger than this are bulk data and left out of the document.
BULK_LIMIT = 1024

_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN", "OB or OW", "US or OW"}
_NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "US or SS"}
_STRING_NUMBER_VRS = {"IS", "DS"}

PATIENT_KEYWORDS = frozenset({
    "PatientName", "PatientID", "IssuerOfPatientID", "TypeOfPatientID",
    "IssuerOfPatientIDQualifiersSequence", "PatientBirthDate", "PatientBirthTime",
    "PatientSex", "OtherPatientIDsSequence", "OtherPatientNames", "PatientComments",
    "PatientSpeciesDescription", "PatientSpeciesCodeSequence", "PatientBreedDescription",
    "PatientBreedCodeSequence", "BreedRegistrationSequence", "ResponsiblePerson",
    "ResponsiblePersonRole", "ResponsibleOrganization", "PatientIdentityRemoved",
    "DeidentificationMethod", "DeidentificationMethodCodeSequence",
    "ReferencedPatientSequence", "QualityControlSubject", "StrainDescription",
    "StrainNomenclature", "EthnicGroup", "PatientBirthName", "PatientMotherBirthName",
})
STUDY_KEYWORDS = frozenset({
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName",
    "ReferringPhysicianIdentificationSequence", "StudyID", "AccessionNumber",
    "IssuerOfAccessionNumberSequence", "StudyDescription", "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy", "ReferencedStudySequence", "ProcedureCodeSequence",
    "ReasonForPerformedProcedureCodeSequence", "AdmittingDiagnosesDescription",
    "AdmittingDiagnosesCodeSequence", "PatientAge", "PatientSize", "PatientWeight",
    "PatientSizeCodeSequence", "Occupation", "AdditionalPatientHistory",
    "PregnancyStatus", "MedicalAlerts", "Allergies", "SmokingStatus",
})
SERIES_KEYWORDS = frozenset({
    "SeriesInstanceUID", "Modality", "SeriesNumber", "Laterality", "SeriesDate",
    "SeriesTime", "PerformingPhysicianName", "ProtocolName", "SeriesDescription",
    "SeriesDescriptionCodeSequence", "OperatorsName", "ReferencedPerformedProcedureStepSequence",
    "RelatedSeriesSequence", "BodyPartExamined", "PatientPosition",
    "SmallestPixelValueInSeries", "LargestPixelValueInSeries", "RequestAttributesSequence",
    "PerformedProcedureStepID", "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime", "PerformedProcedureStepDescription",
    "PerformedProtocolCodeSequence", "AnatomicalOrientationType",
})


def split_levels(ds: Dataset) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any],
                                       dict[str, Any], dict[str, str]]:
    """(patient, study, series, instance, instance VRs) of one instance.

    The instance level starts with the file meta elements, as the service keeps them.
    """
    patient: dict[str, Any] = {}
    study: dict[str, Any] = {}
    series: dict[str, Any] = {}
    instance: dict[str, Any] = {}
    vrs: dict[str, str] = {}
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _fill(meta, instance, vrs)
    for elem in ds:
        name = _name(elem)
        if name in PATIENT_KEYWORDS:
            target = patient
        elif name in STUDY_KEYWORDS:
            target = study
        elif name in SERIES_KEYWORDS:
            target = series
        else:
            target = instance
        _put(elem, target, vrs)
    return patient, study, series, instance, vrs


def dataset_to_json(ds: Dataset) -> dict[str, Any]:
    """All elements of a dataset (a sequence item) as one keyword object."""
    out: dict[str, Any] = {}
    _fill(ds, out, None)
    return out


def _fill(ds: Dataset, out: dict[str, Any], vrs: dict[str, str] | None) -> None:
    for elem in ds:
        _put(elem, out, vrs)


def _name(elem: DataElement) -> str:
    if elem.tag.is_private or not elem.keyword:
        return f"{int(elem.tag):08X}"
    return elem.keyword


def _put(elem: DataElement, out: dict[str, Any], vrs: dict[str, str] | None) -> None:
    if elem.tag.element == 0 and elem.tag.group != 0x0002:
        return  # group lengths describe the encoding, not the data
    name = _name(elem)
    if elem.keyword == "PixelData" or elem.tag in (0x7FE00008, 0x7FE00009):
        out[name] = None
        return
    if elem.VR in _BINARY_VRS and elem.value is not None and len(elem.value) > BULK_LIMIT:
        return
    out[name] = element_value(elem)
    if vrs is not None and name != elem.keyword:
        vrs[name] = str(elem.VR)


def element_value(elem: DataElement) -> Any:
    """One element's value in the metadata document's conventions."""
    vr = str(elem.VR)
    value = elem.value
    if value is None or (not isinstance(value, int | float) and len(value) == 0):
        return None
    if vr == "SQ":
        return [dataset_to_json(item) for item in value]
    if vr in _BINARY_VRS:
        raw = value if isinstance(value, bytes) else bytes(value)
        return base64.b64encode(raw).decode("ascii")
    if isinstance(value, MultiValue | list | tuple):
        items = [_scalar(vr, v) for v in value]
        return items if len(items) != 1 else items[0]
    return _scalar(vr, value)


def _scalar(vr: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if vr in _STRING_NUMBER_VRS:
        original = getattr(value, "original_string", None)
        return original if original is not None else str(value)
    if vr in _NUMBER_VRS:
        if isinstance(value, float):
            return value
        return int(value)
    if vr == "AT":
        return f"{int(value):08X}"
    if vr == "PN":
        return str(value)
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\x00 ")
    return str(value)
