"""The metadata document's value conventions, reversed: one convention per test."""

from __future__ import annotations

import io
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.tag import Tag
from pydicom.valuerep import PersonName

from hi_async.dicom.attributes import Rebuild, dataset_from_attributes
from hi_async.dicom.errors import BadAttribute


def build(attrs: dict[str, Any], hints: dict[str, str] | None = None,
          pixel_representation: int = 0) -> tuple[Dataset, Rebuild]:
    rebuild = Rebuild(vr_hints=hints or {}, pixel_representation=pixel_representation)
    return dataset_from_attributes(attrs, rebuild), rebuild


def encoded(ds: Dataset) -> bytes:
    """The data set as Explicit VR Little Endian bytes (what a file would hold)."""
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = False, True
    write_dataset(fp, ds)
    return fp.getvalue()


def reread(ds: Dataset) -> Dataset:
    data = encoded(ds)
    return pydicom.dcmread(io.BytesIO(data), force=True)  # a bare data set, no file meta


def test_is_and_ds_strings_are_written_exactly_as_the_metadata_has_them() -> None:
    ds, _ = build({"NumberOfFrames": "1 ", "SliceThickness": "5.000000",
                   "ImagePositionPatient": ["-160.0", "0", "1e2"]})
    data = encoded(ds)
    assert b"1 " in data and b"5.000000" in data and b"-160.0\\0\\1e2" in data


def test_numbers_stay_numbers_with_the_dictionary_vr() -> None:
    ds, _ = build({"Rows": 512, "Columns": 256, "FrameTime": "33.3",
                   "ExposureInmAs": 2.5, "ReferencedFrameNumber": ["1", "3"]})
    back = reread(ds)
    assert (back.Rows, back.Columns) == (512, 256)
    assert back["Rows"].VR == "US" and back["ExposureInmAs"].VR == "FD"
    assert back.ExposureInmAs == 2.5


def test_us_or_ss_follows_pixel_representation_and_sign() -> None:
    signed, _ = build({"SmallestImagePixelValue": 5}, pixel_representation=1)
    unsigned, _ = build({"SmallestImagePixelValue": 5})
    negative, _ = build({"SmallestImagePixelValue": -100})
    assert signed["SmallestImagePixelValue"].VR == "SS"
    assert unsigned["SmallestImagePixelValue"].VR == "US"
    assert negative["SmallestImagePixelValue"].VR == "SS"


def test_arrays_are_multi_valued_and_null_items_are_empty_values() -> None:
    ds, _ = build({"ImageType": ["DERIVED", "SECONDARY", None, "MPR"]})
    assert list(reread(ds).ImageType) == ["DERIVED", "SECONDARY", "", "MPR"]


def test_person_names_are_plain_strings() -> None:
    ds, _ = build({"PatientName": "Doe^Jane^^Dr", "OtherPatientNames": ["A^B", "C^D"]})
    back = reread(ds)
    assert back.PatientName == PersonName("Doe^Jane^^Dr")
    assert [str(n) for n in back.OtherPatientNames] == ["A^B", "C^D"]


def test_binary_values_are_base64() -> None:
    ds, _ = build({"00091010": "AQIDBA==", "00090010": "ACME"}, hints={"00091010": "OB"})
    assert ds[0x00091010].VR == "OB"
    assert ds[0x00091010].value == b"\x01\x02\x03\x04"


def test_null_is_an_empty_element_not_a_missing_one() -> None:
    ds, _ = build({"AccessionNumber": None, "ReferencedImageSequence": None,
                   "PatientWeight": None})
    back = reread(ds)
    assert "AccessionNumber" in back and back.AccessionNumber == ""
    assert "ReferencedImageSequence" in back and len(back.ReferencedImageSequence) == 0
    assert "PatientWeight" in back and back.PatientWeight is None


def test_sequences_become_nested_datasets_at_any_depth() -> None:
    ds, _ = build({"ReferencedImageSequence": [
        {"ReferencedSOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
         "ReferencedSOPInstanceUID": "1.2.3",
         "PurposeOfReferenceCodeSequence": [{"CodeValue": "121320",
                                             "CodingSchemeDesignator": "DCM",
                                             "CodeMeaning": "Uncompressed predecessor"}]},
        {"ReferencedSOPInstanceUID": "1.2.4"}]})
    back = reread(ds)
    assert len(back.ReferencedImageSequence) == 2
    code = back.ReferencedImageSequence[0].PurposeOfReferenceCodeSequence[0]
    assert code.CodeValue == "121320"
    assert back.ReferencedImageSequence[1].ReferencedSOPInstanceUID == "1.2.4"


def test_attribute_tags_are_hex_strings() -> None:
    ds, _ = build({"FrameIncrementPointer": "00181063"})
    assert ds.FrameIncrementPointer == Tag(0x0018, 0x1063)


def test_private_elements_take_their_vr_from_the_hints() -> None:
    ds, rebuild = build({"00290010": "SIEMENS MEDCOM HEADER", "00291031": "4.0.12412818",
                         "00291032": 468512, "00291033": 0},
                        hints={"00290010": "LO", "00291031": "LO", "00291032": "UL",
                               "00291033": "UL"})
    assert [ds[t].VR for t in (0x00290010, 0x00291031, 0x00291032)] == ["LO", "LO", "UL"]
    assert rebuild.inferred == []
    back = reread(ds)
    assert back[0x00291032].value == 468512


def test_private_elements_in_items_use_the_private_dictionary_when_the_creator_is_known(
        ) -> None:
    # GEMS_PARM_01 (0043,xx39) is IS in pydicom's private dictionary.
    ds, rebuild = build({"ReferencedImageSequence": [
        {"00430010": "GEMS_PARM_01", "00431039": ["1", "2", "3", "4"]}]})
    item = ds.ReferencedImageSequence[0]
    assert item[0x00431039].VR == "IS"
    assert rebuild.inferred == []


def test_private_elements_in_items_without_any_vr_are_inferred_and_listed() -> None:
    ds, rebuild = build({"ReferencedImageSequence": [
        {"00090010": "HI_ASYNC TEST", "00091001": "nested text", "00091002": 42,
         "00091003": -5, "00091004": 2.5, "00091005": [{"CodeValue": "2"}],
         "00091006": "x" * 100}]})
    item = ds.ReferencedImageSequence[0]
    assert [item[0x00091000 + n].VR for n in range(1, 7)] == ["LO", "UL", "SL", "FD", "SQ",
                                                              "LT"]
    assert item[0x00090010].VR == "LO"  # a private creator, by definition
    assert len(rebuild.inferred) == 6
    assert rebuild.inferred[0] == "ReferencedImageSequence[0]/00091001"


def test_a_value_held_by_reference_is_left_out_and_reported() -> None:
    uri = "https://dicom-medical-imaging.us-east-1.amazonaws.com/bulkdata/abc"
    ds, rebuild = build({"00291010": {"vr": "OB", "BulkDataURI": uri}, "00290010": "SIEMENS"},
                        hints={"00291010": "OB"})
    assert 0x00291010 not in ds
    assert rebuild.by_reference == ["00291010"]


def test_an_unknown_keyword_is_refused_by_name() -> None:
    with pytest.raises(BadAttribute, match="'PatientsFavouriteColour'"):
        build({"PatientsFavouriteColour": "blue"})


def test_invalid_base64_is_refused_naming_the_attribute() -> None:
    with pytest.raises(BadAttribute, match=r"00091010 is not valid base64"):
        build({"00091010": "not base64!"}, hints={"00091010": "OB"})


def test_a_sequence_item_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(BadAttribute, match=r"item 0 of sequence ReferencedImageSequence"):
        build({"ReferencedImageSequence": ["1.2.3"]})


def test_a_number_where_text_of_numbers_is_impossible_is_refused() -> None:
    with pytest.raises(BadAttribute, match=r"Rows \(US\) is not an integer: 'wide'"):
        build({"Rows": "wide"})
