"""An instance's dataset from a metadata document: levels, file meta, losses, bad input."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from hi_async.dicom import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    UID_ROOT,
    build_instance,
    instance_dataset,
)
from hi_async.dicom.errors import BadAttribute, InstanceNotFound
from hi_async.dicom.losses import MODIFYING_EQUIPMENT, NOTE_PREFIX, note_text

SERIES, SOP = "1.2.3.4", "1.2.3.4.5"
CT = "1.2.840.10008.5.1.4.1.1.2"


def document(**instance_dicom: Any) -> dict[str, Any]:
    dicom = {"FileMetaInformationGroupLength": 190, "FileMetaInformationVersion": "AAE=",
             "MediaStorageSOPClassUID": CT, "MediaStorageSOPInstanceUID": SOP,
             "TransferSyntaxUID": "1.2.840.10008.1.2.1", "ImplementationClassUID": "1.2.3",
             "SourceApplicationEntityTitle": "SCANNER", "SOPClassUID": CT,
             "SOPInstanceUID": SOP, "InstanceNumber": "7 ", "Rows": 8, "Columns": 8,
             "BitsAllocated": 16, "BitsStored": 12, "HighBit": 11, "PixelRepresentation": 0,
             "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2",
             "PixelData": None}
    dicom.update(instance_dicom)
    return {
        "SchemaVersion": "1.1", "DatastoreID": "d" * 32, "ImageSetID": "a" * 32,
        "Patient": {"DICOM": {"PatientName": "Doe^Jane", "PatientID": "P1"}},
        "Study": {"DICOM": {"StudyInstanceUID": "1.2.3", "StudyDescription": "study"},
                  "Series": {SERIES: {"DICOM": {"SeriesInstanceUID": SERIES,
                                                "Modality": "CT", "SeriesNumber": "3"},
                                      "Instances": {SOP: {
                                          "DICOM": dicom, "DICOMVRs": {},
                                          "StoredTransferSyntaxUID":
                                              "1.2.840.10008.1.2.4.202",
                                          "ImageFrames": [{"ID": "f" * 32}]}}}}},
    }


def test_the_four_levels_merge_into_one_dataset() -> None:
    ds = instance_dataset(document(), SERIES, SOP)
    assert ds.PatientName == "Doe^Jane" and ds.StudyDescription == "study"
    assert ds.Modality == "CT" and ds.InstanceNumber == 7 and ds.Rows == 8


def test_the_most_specific_level_wins_a_name_given_twice() -> None:
    doc = document(SeriesNumber="9")
    assert instance_dataset(doc, SERIES, SOP).SeriesNumber == 9


def test_file_meta_is_written_anew_and_the_original_file_meta_is_not_in_the_body() -> None:
    ds = instance_dataset(document(), SERIES, SOP)
    meta = ds.file_meta
    assert meta.MediaStorageSOPClassUID == CT and meta.MediaStorageSOPInstanceUID == SOP
    assert meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.202"  # as stored
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert IMPLEMENTATION_CLASS_UID.startswith(UID_ROOT + ".")
    assert len(IMPLEMENTATION_CLASS_UID) <= 64 and len(IMPLEMENTATION_VERSION_NAME) <= 16
    assert "SourceApplicationEntityTitle" not in meta
    assert not [e for e in ds if e.tag.group == 2] and "PixelData" not in ds


def test_the_build_reports_frames_and_the_syntaxes() -> None:
    build = build_instance(document(), SERIES, SOP)
    assert build.frame_ids == ("f" * 32,)
    assert build.stored_transfer_syntax == "1.2.840.10008.1.2.4.202"
    assert build.original_transfer_syntax == "1.2.840.10008.1.2.1"
    assert build.losses == ()


def test_a_missing_stored_syntax_means_htj2k() -> None:
    doc = document()
    del doc["Study"]["Series"][SERIES]["Instances"][SOP]["StoredTransferSyntaxUID"]
    assert build_instance(doc, SERIES, SOP).stored_transfer_syntax == \
        "1.2.840.10008.1.2.4.202"


def test_a_lossy_source_is_marked_lossy() -> None:
    doc = document(TransferSyntaxUID="1.2.840.10008.1.2.4.51")
    assert instance_dataset(doc, SERIES, SOP).LossyImageCompression == "01"
    doc = document(TransferSyntaxUID="1.2.840.10008.1.2.4.51", LossyImageCompression="01")
    assert instance_dataset(doc, SERIES, SOP).LossyImageCompression == "01"


def test_an_overlay_without_its_data_is_removed_and_noted() -> None:
    doc = document(**{"60000010": 8, "60000011": 8, "60000040": "G", "60000100": 1,
                      "60000102": 0})
    doc["Study"]["Series"][SERIES]["Instances"][SOP]["DICOMVRs"] = {
        "60000010": "US", "60000011": "US", "60000040": "CS", "60000100": "US",
        "60000102": "US"}
    build = build_instance(doc, SERIES, SOP)
    assert not [e for e in build.dataset if e.tag.group == 0x6000]
    assert build.losses == ("overlay plane 6000 (OverlayData; the plane was removed)",)
    item = build.dataset.ContributingEquipmentSequence[-1]
    code = item.PurposeOfReferenceCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == \
        MODIFYING_EQUIPMENT
    assert item.ContributionDescription.startswith(NOTE_PREFIX)
    assert "overlay plane 6000" in item.ContributionDescription
    assert item.Manufacturer == "hi_async"


def test_an_icon_without_pixel_data_is_removed_and_noted() -> None:
    doc = document(IconImageSequence=[{"Rows": 64, "Columns": 64, "PixelData": None}],
                   ContributingEquipmentSequence=[{"Manufacturer": "earlier"}])
    build = build_instance(doc, SERIES, SOP)
    assert "IconImageSequence" not in build.dataset
    assert build.losses == ("IconImageSequence pixel data (the sequence was removed)",)
    items = build.dataset.ContributingEquipmentSequence
    assert [i.Manufacturer for i in items] == ["earlier", "hi_async"]


def test_palette_and_lut_data_missing_are_noted() -> None:
    doc = document(PhotometricInterpretation="PALETTE COLOR",
                   RedPaletteColorLookupTableDescriptor=[256, 0, 16],
                   RedPaletteColorLookupTableData="AAAA",
                   GreenPaletteColorLookupTableDescriptor=[256, 0, 16],
                   ModalityLUTSequence=[{"LUTDescriptor": [4096, 0, 16],
                                         "ModalityLUTType": "HU"}])
    assert build_instance(doc, SERIES, SOP).losses == (
        "GreenPaletteColorLookupTableData", "ModalityLUTSequence[0] LUTData")


def test_the_note_fits_an_st_value() -> None:
    text = note_text([f"private element {n:04d} (held by reference)" for n in range(100)])
    assert len(text) <= 1024 and text.endswith("...")


def test_an_unknown_series_or_instance_is_named() -> None:
    with pytest.raises(InstanceNotFound, match=r"has no series 9\.9"):
        instance_dataset(document(), "9.9", SOP)
    with pytest.raises(InstanceNotFound, match=re.escape(f"series {SERIES} of image set "
                                                         f"{'a' * 32} has no instance 9.9")):
        instance_dataset(document(), SERIES, "9.9")


def test_uids_that_contradict_the_documents_keys_are_refused() -> None:
    doc = document(SOPInstanceUID="1.2.3.4.6")
    with pytest.raises(BadAttribute, match=re.escape(
            f"SOPInstanceUID is '1.2.3.4.6' but the metadata files the instance under '{SOP}'")):
        instance_dataset(doc, SERIES, SOP)


def test_an_instance_without_sop_class_cannot_be_a_file() -> None:
    doc = document()
    dicom = doc["Study"]["Series"][SERIES]["Instances"][SOP]["DICOM"]
    del dicom["SOPClassUID"], dicom["MediaStorageSOPClassUID"]
    with pytest.raises(BadAttribute, match="has no SOPClassUID"):
        instance_dataset(doc, SERIES, SOP)


def test_the_document_is_not_changed() -> None:
    doc = document(IconImageSequence=[{"Rows": 64, "PixelData": None}])
    before = copy.deepcopy(doc)
    instance_dataset(doc, SERIES, SOP)
    assert doc == before
