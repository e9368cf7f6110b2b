"""Image set metadata → FrameRefs: the document's conventions and its failure modes."""

from __future__ import annotations

import gzip
import json
import zlib

import orjson
import pytest

from hi_async.errors import MetadataError, ServiceError
from hi_async.metadata import gunzip_bounded, parse_metadata

from .helpers import document, frame_entry, frame_id, gz, instance

DS, IS = frame_id(1), frame_id(999)


def test_multi_series_multi_frame_in_document_order() -> None:
    doc = document({
        "1.1": {"1.1.1": instance(64, 48, [frame_entry(frame_id(10), 111),
                                           frame_entry(frame_id(11), 222)],
                                  number_of_frames="2 ")},
        "1.2": {"1.2.1": instance(32, 32, [frame_entry(frame_id(20), 333)]),
                "1.2.2": instance(32, 32, [frame_entry(frame_id(21), 444)])},
    })
    refs = parse_metadata(gz(doc), DS, IS, label="ct")
    assert [r.image_frame_id for r in refs] == [frame_id(n) for n in (10, 11, 20, 21)]
    assert [r.frame_number for r in refs] == [1, 2, 1, 1]
    assert [r.expected_crc32 for r in refs] == [111, 222, 333, 444]
    assert refs[0].series_instance_uid == "1.1" and refs[3].sop_instance_uid == "1.2.2"
    assert refs[0].study_instance_uid == "1.2.3"
    assert refs[0].label == "ct" and refs[0].datastore_id == DS


def test_colour_unsigned_and_signed_dtypes() -> None:
    doc = document({"1": {
        "a": instance(8, 8, [frame_entry(frame_id(1), 5)], samples=3, bits=8, signed=0),
        "b": instance(8, 8, [frame_entry(frame_id(2), 6)], signed=1),
        "c": instance(8, 8, [frame_entry(frame_id(3), 7)], signed=0),
    }})
    a, b, c = parse_metadata(gz(doc), DS, IS)
    assert (a.samples_per_pixel, a.dtype) == (3, "|u1")
    assert (b.signed, b.dtype) == (True, "<i2")
    assert (c.signed, c.dtype) == (False, "<u2")


def test_is_strings_with_pad_spaces_are_numbers() -> None:
    inst = instance(8, 8, [frame_entry(frame_id(1), 5)])
    inst["DICOM"].update({"Rows": "8 ", "Columns": " 8", "BitsStored": "12 "})
    (ref,) = parse_metadata(gz(document({"1": {"a": inst}})), DS, IS)
    assert (ref.rows, ref.columns, ref.bits_stored) == (8, 8, 12)


def test_missing_stored_transfer_syntax_means_htj2k() -> None:
    doc = document({"1": {"a": instance(8, 8, [frame_entry(frame_id(1), 5)], tsuid=None)}})
    (ref,) = parse_metadata(gz(doc), DS, IS)
    assert ref.stored_transfer_syntax_uid == "1.2.840.10008.1.2.4.202"
    assert ref.expected_content_type == "image/jph"


def test_checksum_is_the_full_resolution_entry_and_frame_size_is_ignored() -> None:
    entry = frame_entry(frame_id(1), None)
    entry["PixelDataChecksumFromBaseToFullResolution"] = [
        {"Width": 512, "Height": 512, "Checksum": 999},
        {"Width": 64, "Height": 64, "Checksum": 1},
    ]
    entry["FrameSizeInBytes"] = 7
    (ref,) = parse_metadata(gz(document({"1": {"a": instance(8, 8, [entry])}})), DS, IS)
    assert ref.expected_crc32 == 999
    assert (ref.rows, ref.columns) == (8, 8)


def test_missing_checksum_makes_the_frame_unverifiable() -> None:
    doc = document({"1": {"a": instance(8, 8, [frame_entry(frame_id(1), None)])}})
    (ref,) = parse_metadata(gz(doc), DS, IS)
    assert ref.expected_crc32 is None


def test_negative_checksum_compares_unsigned() -> None:
    doc = document({"1": {"a": instance(8, 8, [frame_entry(frame_id(1), -2)])}})
    (ref,) = parse_metadata(gz(doc), DS, IS)
    assert ref.expected_crc32 == 0xFFFFFFFE


@pytest.mark.parametrize("blob, message", [
    (b"this is not gzip", "not gzip"),
    (gzip.compress(b"{not json"), "not JSON"),
    (gzip.compress(b"[1, 2]"), "not a JSON object"),
    (gzip.compress(b'{"SchemaVersion": "1.1"}'), "'Study'"),
    (gzip.compress(b"{}")[:-6], "truncated"),
])
def test_bad_documents_are_metadata_errors(blob: bytes, message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        parse_metadata(blob, DS, IS)


def test_missing_rows_is_named() -> None:
    inst = instance(8, 8, [frame_entry(frame_id(1), 5)])
    del inst["DICOM"]["Rows"]
    with pytest.raises(MetadataError, match="Rows"):
        parse_metadata(gz(document({"1": {"a": inst}})), DS, IS)


def test_gzip_bomb_stops_at_the_bound() -> None:
    bomb = gzip.compress(b"\0" * (4 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 10_000
    with pytest.raises(MetadataError, match="inflates past"):
        gunzip_bounded(bomb, limit=1024 * 1024)
    assert len(gunzip_bounded(bomb, limit=8 * 1024 * 1024)) == 4 * 1024 * 1024


def test_inflate_is_streamed_in_chunks() -> None:
    data = bytes(range(256)) * 5000
    assert gunzip_bounded(gzip.compress(data)) == data
    raw = zlib.compress(data)
    with pytest.raises(MetadataError):
        gunzip_bounded(raw)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "a/b", "ABCDEF" + "0" * 26, "0" * 31])
def test_server_supplied_frame_ids_are_validated(bad: str) -> None:
    doc = document({"1": {"a": instance(8, 8, [frame_entry(bad, 5)])}})
    # The server's mistake, not the user's: a service error (exit 1), never a path.
    with pytest.raises(ServiceError, match="the service sent image frame ID"):
        parse_metadata(gz(doc), DS, IS)


def test_a_value_of_the_wrong_type_is_a_metadata_error_not_a_crash() -> None:
    doc = document({"1": {"a": instance(8, 8, [frame_entry("0" * 32, 5)])}})
    frame = doc["Study"]["Series"]["1"]["Instances"]["a"]["ImageFrames"][0]
    frame["PixelDataChecksumFromBaseToFullResolution"].append(
        {"Width": "wide", "Height": 8, "Checksum": 1})
    with pytest.raises(MetadataError, match="malformed value"):
        parse_metadata(gz(doc), DS, IS)
    doc = document({"1": {"a": instance(8, 8, [frame_entry("0" * 32, 5)])}})
    doc["Study"]["Series"]["1"]["Instances"]["a"]["DICOM"]["Rows"] = "1e999"
    with pytest.raises(MetadataError):
        parse_metadata(gz(doc), DS, IS)


def test_json_the_fast_parser_refuses_is_still_read_as_json_allows() -> None:
    """orjson reads the document; what it refuses and JSON allows (an integer wider than
    64 bits, a NaN) is read by the standard library, with the same frames as a result."""
    doc = document({"1": {"a": instance(8, 8, [frame_entry(frame_id(1), 7)])}})
    doc["Study"]["DICOM"]["Big"] = 2**70
    doc["Study"]["DICOM"]["Odd"] = float("nan")
    with pytest.raises(orjson.JSONDecodeError):  # what the fallback is there for
        orjson.loads(gzip.decompress(gz(doc)))
    (ref,) = parse_metadata(gz(doc), DS, IS)
    assert (ref.image_frame_id, ref.expected_crc32) == (frame_id(1), 7)
    utf16 = gzip.compress(json.dumps(document(
        {"1": {"a": instance(8, 8, [frame_entry(frame_id(2), 9)])}})).encode("utf-16"))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(gzip.decompress(utf16))
    (ref,) = parse_metadata(utf16, DS, IS)
    assert (ref.image_frame_id, ref.expected_crc32) == (frame_id(2), 9)


def test_frame_references_survive_pickling_as_they_cross_to_worker_processes() -> None:
    import pickle

    doc = document({"1": {
        "a": instance(8, 8, [frame_entry(frame_id(1), 5), frame_entry(frame_id(2), None)],
                      signed=1),
        "b": instance(4, 4, [frame_entry(frame_id(3), 7)], samples=3, bits=8, signed=0),
    }})
    refs = parse_metadata(gz(doc), DS, IS, label="study A")
    refs += parse_metadata(gz(doc), DS, IS)
    assert [r.expected_crc32 for r in refs] == [5, None, 7] * 2
    for ref in refs:
        back = pickle.loads(pickle.dumps(ref, protocol=pickle.HIGHEST_PROTOCOL))
        assert back == ref and hash(back) == hash(ref)
        assert (back.label, back.signed, back.dtype) == (ref.label, ref.signed, ref.dtype)
        with pytest.raises(AttributeError):
            back.rows = 1  # type: ignore[misc]
