"""WARNING/warning.ndjson: files imported despite a non-conformance, over HTTP with boto3.

One job imports conformant files and files that are wrong in one way each; the records
are read back from S3 and the instances through GetImageSetMetadata and GetImageFrame.
The pure checks behind them are tested on their own at the end.
"""

from __future__ import annotations

import gzip
import json
import struct
from collections.abc import Callable, Iterator
from typing import Any

import imagecodecs
import numpy as np
import pytest
from pydicom.dataset import Dataset

from hi_async.local.dicom_import.import_warnings import (
    check_encapsulated,
    make_warning,
    metadata_warnings,
    uid_problem,
)
from tests.local.import_support.jobs import (
    delete_datastore,
    frame,
    instances,
    manifest,
    new_bucket,
    read_s3,
    run_job,
    upload,
    wait_active,
)
from tests.local.import_support.warning_files import (
    dataset,
    encapsulated,
    fragment_offsets,
    native_file,
    p10,
    pixels,
    rle_file,
    rle_fragments,
)

RLE_LOSSLESS = "1.2.840.10008.1.2.5"
BAD_SOP_UID = "1.2.826.0.1.3680043.8.498.7001.4.01"
LONG_DESCRIPTION = "S" * 80

# pydicom warns when a test sets the very values these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI",
                                        "ignore:The value length")

#: file name -> (warning_reason_code, type, words its message must contain)
EXPECTED_WARNINGS: dict[str, tuple[int, str, tuple[str, ...]]] = {
    "bad_sop_uid.dcm": (0xB201, "InvalidUidFormat",
                        ("SOPInstanceUID", BAD_SOP_UID, "leading zero")),
    "long_value.dcm": (0xB202, "InvalidDicomValueLength",
                       ("SeriesDescription", "80 characters", "LO allows 64")),
    "fewer_fragments.dcm": (0xB111, "FrameNumberMismatch",
                            ("NumberOfFrames is 3", "only 2 fragments", "no image frames")),
    "table_lists_more.dcm": (0xB111, "FrameNumberMismatch",
                             ("NumberOfFrames is 2", "Basic Offset Table lists 3 frames")),
    "wrong_offsets.dcm": (0xB112, "InvalidOffsetTable",
                          ("Basic Offset Table", "first frame's offset is 16, not 0",
                           "read from the fragments")),
}
CONFORMANT = ("conformant_native.dcm", "conformant_rle.dcm", "conformant_rle_no_table.dcm")
REFUSED = "no_pixel_data.dcm"


def _conformant_native() -> bytes:
    return native_file(dataset(1), pixels(1, 1))


def _conformant_rle() -> bytes:
    fragments = rle_fragments(pixels(3, 2))
    return rle_file(dataset(2, frames=3), encapsulated(fragment_offsets(fragments), fragments))


def _conformant_rle_no_table() -> bytes:
    return rle_file(dataset(3, frames=2), encapsulated([], rle_fragments(pixels(2, 3))))


def _bad_sop_uid() -> bytes:
    return native_file(dataset(4, sop_uid=BAD_SOP_UID), pixels(1, 4))


def _long_value() -> bytes:
    ds = dataset(5)
    ds.SeriesDescription = LONG_DESCRIPTION
    return native_file(ds, pixels(1, 5))


def _fewer_fragments() -> bytes:
    return rle_file(dataset(6, frames=3), encapsulated([], rle_fragments(pixels(2, 6))))


def _table_lists_more() -> bytes:
    fragments = rle_fragments(pixels(3, 7))
    return rle_file(dataset(7, frames=2), encapsulated(fragment_offsets(fragments), fragments))


def _wrong_offsets() -> bytes:
    """Offsets counted from the Basic Offset Table's own item tag instead of the first
    fragment's: each is 16 bytes too far, and a reader that trusts them joins both
    fragments into one frame."""
    fragments = rle_fragments(pixels(2, 8))
    shifted = [offset + 16 for offset in fragment_offsets(fragments)]
    return rle_file(dataset(8, frames=2), encapsulated(shifted, fragments))


def _no_pixel_data() -> bytes:
    return p10(dataset(9))


FILES: dict[str, Callable[[], bytes]] = {
    "conformant_native.dcm": _conformant_native,
    "conformant_rle.dcm": _conformant_rle,
    "conformant_rle_no_table.dcm": _conformant_rle_no_table,
    "bad_sop_uid.dcm": _bad_sop_uid,
    "long_value.dcm": _long_value,
    "fewer_fragments.dcm": _fewer_fragments,
    "table_lists_more.dcm": _table_lists_more,
    "wrong_offsets.dcm": _wrong_offsets,
    REFUSED: _no_pixel_data,
}


def _ndjson(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def _by_name(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["inputFile"].rsplit("/", 1)[1]: r for r in records}


@pytest.fixture(scope="module")
def job(mi: Any, s3: Any) -> Iterator[dict[str, Any]]:
    datastore_id = mi.create_datastore(datastoreName="import-warnings")["datastoreId"]
    wait_active(mi, datastore_id)
    bucket = new_bucket(s3, "warn")
    upload(s3, bucket, "in/", [(name, build()) for name, build in FILES.items()])
    props = run_job(mi, datastore_id, f"s3://{bucket}/in/", f"s3://{bucket}/out/")
    assert props["jobStatus"] == "COMPLETED", props
    out = props["outputS3Uri"]
    yield {"datastore_id": datastore_id, "props": props, "summary": manifest(s3, props),
           "success": _by_name(_ndjson(read_s3(s3, out + "SUCCESS/success.ndjson"))),
           "failure": _by_name(_ndjson(read_s3(s3, out + "FAILURE/failure.ndjson"))),
           "warning": _by_name(_ndjson(read_s3(s3, out + "WARNING/warning.ndjson")))}
    delete_datastore(mi, datastore_id)


def _instance(job: dict[str, Any], mi: Any, name: str) -> tuple[str, dict[str, Any]]:
    """(image set ID, the instance's metadata entry) of the one instance ``name`` holds."""
    image_set_id = job["success"][name]["importResponse"]["imageSetId"]
    (entry,) = instances(mi, job["datastore_id"], image_set_id).values()
    return image_set_id, entry


def _stored_frames(job: dict[str, Any], mi: Any, name: str) -> list[np.ndarray]:
    image_set_id, entry = _instance(job, mi, name)
    decoded = []
    for meta in entry["ImageFrames"]:
        data, content_type = frame(mi, job["datastore_id"], image_set_id, meta["ID"])
        assert content_type == "image/jph"
        decoded.append(imagecodecs.htj2k_decode(data))
    return decoded


# -- the job's records -----------------------------------------------------------------------
def test_only_the_non_conformant_files_get_warning_records(job: dict[str, Any]) -> None:
    assert set(job["warning"]) == set(EXPECTED_WARNINGS)
    assert not set(CONFORMANT) & set(job["warning"])


@pytest.mark.parametrize("name", sorted(EXPECTED_WARNINGS))
def test_a_warning_record_carries_the_documented_code_and_type(job: dict[str, Any],
                                                               name: str) -> None:
    code, kind, words = EXPECTED_WARNINGS[name]
    (warning,) = job["warning"][name]["importResponse"]["warnings"]
    assert set(warning) == {"warning_reason_code", "type", "message"}
    assert (warning["warning_reason_code"], warning["type"]) == (code, kind)
    for word in words:
        assert word in warning["message"]


def test_a_warned_file_is_imported_and_has_a_success_record_too(job: dict[str, Any]) -> None:
    versions = {s["imageSetId"]: s["imageSetVersion"] for s in job["summary"]["imageSetsSummary"]}
    for name, record in job["warning"].items():
        success = job["success"][name]
        assert record["inputFile"] == success["inputFile"]
        response = record["importResponse"]
        assert list(response) == ["imageSetId", "imageSetVersion", "isPrimary", "warnings"]
        assert response["imageSetId"] == success["importResponse"]["imageSetId"]
        assert response["isPrimary"] is success["importResponse"]["isPrimary"] is True
        assert response["imageSetVersion"] == versions[response["imageSetId"]] == 1


def test_the_manifest_counts_warned_files_as_imported(job: dict[str, Any]) -> None:
    summary = job["summary"]
    imported = len(FILES) - 1
    assert summary["numberOfScannedFiles"] == len(FILES)
    assert summary["numberOfImportedFiles"] == imported == len(job["success"])
    assert summary["numberOfFilesWithCustomerError"] == 1
    assert set(job["failure"]) == {REFUSED}
    assert sum(s["numberOfMatchedSOPInstances"] for s in summary["imageSetsSummary"]) == imported
    assert summary["warningsOutputS3Uri"] == job["props"]["outputS3Uri"] + "WARNING/"


# -- what was imported -----------------------------------------------------------------------
def test_an_instance_with_an_invalid_uid_is_imported_under_that_uid(job: dict[str, Any],
                                                                    mi: Any) -> None:
    image_set_id = job["success"]["bad_sop_uid.dcm"]["importResponse"]["imageSetId"]
    assert set(instances(mi, job["datastore_id"], image_set_id)) == {BAD_SOP_UID}
    (got,) = _stored_frames(job, mi, "bad_sop_uid.dcm")
    np.testing.assert_array_equal(got, pixels(1, 4)[0])


def test_a_value_too_long_is_kept_whole(job: dict[str, Any], mi: Any) -> None:
    image_set_id = job["success"]["long_value.dcm"]["importResponse"]["imageSetId"]
    blob = mi.get_image_set_metadata(datastoreId=job["datastore_id"], imageSetId=image_set_id)
    doc = json.loads(gzip.decompress(blob["imageSetMetadataBlob"].read()))
    (series,) = doc["Study"]["Series"].values()
    assert series["DICOM"]["SeriesDescription"] == LONG_DESCRIPTION


@pytest.mark.parametrize("name", ["fewer_fragments.dcm", "table_lists_more.dcm"])
def test_a_frame_number_mismatch_imports_the_instance_without_frames(
        job: dict[str, Any], mi: Any, name: str) -> None:
    _, entry = _instance(job, mi, name)
    assert entry["ImageFrames"] == []
    assert entry["StoredTransferSyntaxUID"] == RLE_LOSSLESS
    assert entry["DICOM"]["TransferSyntaxUID"] == RLE_LOSSLESS
    assert entry["DICOM"]["NumberOfFrames"] == {"fewer_fragments.dcm": "3",
                                                "table_lists_more.dcm": "2"}[name]


def test_frames_behind_a_wrong_offset_table_are_read_from_the_fragments(
        job: dict[str, Any], mi: Any) -> None:
    got = _stored_frames(job, mi, "wrong_offsets.dcm")
    np.testing.assert_array_equal(np.stack(got), pixels(2, 8))


@pytest.mark.parametrize(("name", "want"), [("conformant_native.dcm", pixels(1, 1)),
                                            ("conformant_rle.dcm", pixels(3, 2)),
                                            ("conformant_rle_no_table.dcm", pixels(2, 3))])
def test_conformant_files_are_stored_bit_for_bit(job: dict[str, Any], mi: Any, name: str,
                                                 want: np.ndarray) -> None:
    np.testing.assert_array_equal(np.stack(_stored_frames(job, mi, name)), want)


# -- the checks on their own -----------------------------------------------------------------
@pytest.mark.parametrize("uid", ["1.2.840.10008.1.2.4.202", "0.0", "2.25.0.1",
                                 "1." + "9" * 62])
def test_valid_uids_pass(uid: str) -> None:
    assert uid_problem(uid) is None


@pytest.mark.parametrize(("uid", "why"), [
    ("1.2.3..4", "empty component"),
    ("1.2.3.", "empty component"),
    (".1.2", "empty component"),
    ("1.2.03", "component '03' has a leading zero"),
    ("1.2.3a", "character 'a' is neither a digit nor '.'"),
    ("1.2 3", "character ' ' is neither a digit nor '.'"),
    ("1." + "9" * 63, "65 characters, more than 64"),
])
def test_invalid_uids_say_what_is_wrong(uid: str, why: str) -> None:
    assert uid_problem(uid) == why


def test_uids_in_sequence_items_and_multiple_values_are_checked() -> None:
    ds = dataset(1)
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref.ReferencedSOPInstanceUID = "1.2.0004"
    ds.ReferencedImageSequence = [ref]
    ds.RelatedGeneralSOPClassUID = ["1.2.3", "1..2"]
    (warning,) = metadata_warnings(ds)
    assert warning == make_warning("INVALID_UID_FORMAT", warning.message)
    assert "2 UID values break" in warning.message
    assert "ReferencedImageSequence[0].ReferencedSOPInstanceUID '1.2.0004'" in warning.message
    assert "RelatedGeneralSOPClassUID '1..2' (empty component)" in warning.message


def test_a_conformant_dataset_has_no_warnings() -> None:
    ds = dataset(1)
    ds.PatientName = "=".join(["A" * 64] * 3)  # 64 characters in each component group
    ds.ReferencedImageSequence = [Dataset()]
    assert metadata_warnings(ds) == []


def test_a_long_message_names_five_values_and_counts_the_rest() -> None:
    ds = dataset(1)
    ds.OtherPatientIDs = [f"{'X' * 65}{i}" for i in range(7)]
    (warning,) = metadata_warnings(ds)
    assert warning.code == 0xB202
    assert warning.message.startswith("7 values are longer than")
    assert warning.message.count("OtherPatientIDs") == 5
    assert warning.message.endswith("; and 2 more")


def _fragments(count: int) -> list[bytes]:
    return [bytes([i]) * 10 for i in range(count)]


def _eot(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}Q", *values)


def test_a_correct_extended_offset_table_passes() -> None:
    fragments = _fragments(3)
    layout = check_encapsulated(encapsulated([], fragments), 3,
                                _eot(fragment_offsets(fragments)), _eot([10, 10, 10]))
    assert (layout.warning, layout.frames_usable, layout.repaired_pixel_data) == (None, True,
                                                                                   None)


def test_an_extended_offset_table_listing_other_frames_is_a_mismatch() -> None:
    fragments = _fragments(3)
    layout = check_encapsulated(encapsulated([], fragments), 2,
                                _eot(fragment_offsets(fragments)), _eot([10, 10, 10]))
    assert layout.warning is not None and layout.warning.code == 0xB111
    assert "Extended Offset Table lists 3 frames" in layout.warning.message
    assert not layout.frames_usable


def test_wrong_extended_lengths_drop_the_tables() -> None:
    fragments = _fragments(2)
    pixel_data = encapsulated([0, 18], fragments)
    layout = check_encapsulated(pixel_data, 2, _eot([0, 18]), _eot([10, 12]))
    assert layout.warning is not None and layout.warning.code == 0xB112
    assert "frame 2's length is given as 12 bytes, its fragment holds 10" in layout.warning.message
    assert layout.repaired_pixel_data == encapsulated([], fragments)


def test_a_wrong_table_over_more_fragments_than_frames_leaves_no_frames() -> None:
    layout = check_encapsulated(encapsulated([0, 5], _fragments(3)), 2)
    assert layout.warning is not None and layout.warning.code == 0xB112
    assert "cannot be told apart" in layout.warning.message
    assert (layout.frames_usable, layout.repaired_pixel_data) == (False, None)


def test_offsets_out_of_order_are_an_invalid_table() -> None:
    fragments = _fragments(2)
    layout = check_encapsulated(encapsulated([18, 0], fragments), 2)
    assert layout.warning is not None
    assert "first frame's offset is 18, not 0" in layout.warning.message


def test_more_fragments_than_frames_without_a_table_is_not_judged_here() -> None:
    layout = check_encapsulated(encapsulated([], _fragments(4)), 2)
    assert (layout.warning, layout.frames_usable) == (None, True)
