"""Safe output paths, the worker's write protocol, and the journal's resume rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from hi_async.errors import InvalidId, OutputError
from hi_async.journal import Journal
from hi_async.model import Check, FrameRef, FrameResult
from hi_async.output.frames import file_checksum
from hi_async.paths import ensure_inside, frame_path, prepare_out_dir
from hi_async.resume import ResumeReport, read_verified, remove_leftover_tmp
from hi_async.verify import verify_frame

from .helpers import crc, ct_pixels, encode, encoded_frame, frame_id

IS = frame_id(7)


def _ref(n: int, expected: int | None) -> FrameRef:
    return FrameRef(frame_id(1), IS, frame_id(n), "1.2", "1.2.3", "1.2.3.4", 1, 64, 48, 1,
                    16, 12, True, "1.2.840.10008.1.2.4.202", expected)


@pytest.mark.parametrize("bad", ["..", "../" + "a" * 29, "a/b" + "c" * 29, "/etc/passwd",
                                 "A" * 32, "a" * 33, ""])
def test_ids_that_could_leave_the_folder_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidId):
        frame_path(tmp_path, bad, frame_id(1), "jph")
    with pytest.raises(InvalidId):
        frame_path(tmp_path, IS, bad, "npy")


def test_frame_paths_follow_the_layout(tmp_path: Path) -> None:
    assert frame_path(tmp_path, IS, frame_id(3), "npy") == tmp_path / IS / f"{frame_id(3)}.npy"
    assert frame_path(tmp_path, IS, frame_id(3), "none") is None
    with pytest.raises(OutputError):
        ensure_inside(tmp_path / "a", tmp_path / "b" / "c")


def test_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        prepare_out_dir(target)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_output_path_that_is_not_writable_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            prepare_out_dir(locked / "out")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("fmt", ["jph", "npy", "raw"])
def test_worker_writes_verified_frames_in_each_format(tmp_path: Path, fmt: str) -> None:
    pixels = ct_pixels()
    data = encode(pixels, "image/jph")
    path = tmp_path / f"f.{fmt}"
    frame = encoded_frame(data, "image/jph", 64, 48, 1, "<i2", crc(pixels))
    out = verify_frame(frame, path=str(path), fmt=fmt)
    assert out.check is Check.VERIFIED and out.path == str(path)
    assert not Path(str(path) + ".tmp").exists()
    if fmt == "jph":
        assert path.read_bytes() == data
    elif fmt == "npy":
        back = np.load(path)
        assert back.dtype == np.int16
        np.testing.assert_array_equal(back, pixels)
    else:
        np.testing.assert_array_equal(np.fromfile(path, "<i2").reshape(64, 48), pixels)


def test_worker_never_writes_a_mismatched_frame(tmp_path: Path) -> None:
    pixels = ct_pixels()
    path = tmp_path / "f.jph"
    frame = encoded_frame(encode(pixels, "image/jph"), "image/jph", 64, 48, 1, "<i2",
                          crc(pixels) ^ 1)
    out = verify_frame(frame, path=str(path), fmt="jph")
    assert out.check is Check.MISMATCH and "CRC32" in (out.error or "")
    assert list(tmp_path.iterdir()) == []


def test_worker_reports_unknown_content_type_as_a_failure(tmp_path: Path) -> None:
    frame = encoded_frame(b"abc", "video/mp4", 4, 4, 1, "<u2", 1)
    out = verify_frame(frame, path=str(tmp_path / "f"), fmt="jph")
    assert out.check is Check.FAILED and "video/mp4" in (out.error or "")


def test_worker_returns_pixels_only_when_asked() -> None:
    pixels = ct_pixels()
    frame = encoded_frame(encode(pixels, "image/jphc"), "image/jphc", 64, 48, 1, "<i2",
                          crc(pixels))
    assert verify_frame(frame, path=None, fmt="none").pixels is None
    got = verify_frame(frame, path=None, fmt="none", want_pixels=True)
    np.testing.assert_array_equal(got.pixels, pixels)


def test_missing_checksum_is_unverifiable_but_kept(tmp_path: Path) -> None:
    pixels = ct_pixels()
    path = tmp_path / "f.jph"
    frame = encoded_frame(encode(pixels, "image/jph"), "image/jph", 64, 48, 1, "<i2", None)
    out = verify_frame(frame, path=str(path), fmt="jph")
    assert out.check is Check.UNVERIFIABLE and path.exists()


def _journal_with(tmp_path: Path, results: list[FrameResult]) -> None:
    j = Journal(tmp_path, resume=True)
    for r in results:
        j.append_many([r])
    j.close()


def test_journal_lines_carry_the_contract_fields(tmp_path: Path) -> None:
    path = tmp_path / IS / "x.jph"
    _journal_with(tmp_path, [FrameResult(_ref(1, 5), "verified", "image/jph", 5, path)])
    (line,) = (tmp_path / "index.jsonl").read_text().splitlines()
    entry = json.loads(line)
    assert set(entry) == {"imageSetId", "imageFrameId", "studyInstanceUid",
                          "seriesInstanceUid", "sopInstanceUid", "frameNumber", "rows",
                          "columns", "samplesPerPixel", "dtype", "contentType", "path",
                          "expectedCrc32", "actualCrc32", "status", "error", "fileBytes",
                          "fileCrc32"}
    assert entry["path"] == f"{IS}/x.jph" and entry["dtype"] == "int16"


def _written(tmp_path: Path, n: int, fmt: str = "jph", body: bytes = b"x",
             expected: int | None = 5) -> FrameResult:
    """A verified frame whose file was written, with its size and CRC32 on record."""
    path = frame_path(tmp_path, IS, frame_id(n), fmt)
    assert path is not None
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(body)
    size, file_crc = file_checksum(str(path))
    return FrameResult(_ref(n, expected), "verified", "image/jph", 5, path,
                       file_bytes=size, file_crc32=file_crc)


def test_resume_keeps_verified_frames_on_disk_and_ignores_a_torn_line(tmp_path: Path) -> None:
    gone = _written(tmp_path, 2)
    assert gone.path is not None
    gone.path.unlink()
    _journal_with(tmp_path, [
        _written(tmp_path, 1), gone,
        FrameResult(_ref(3, 5), "failed", None, None, None, "boom"),
        FrameResult(_ref(4, 5), "verified", None, 5, None),  # format none
    ])
    with open(tmp_path / "index.jsonl", "ab") as fh:
        fh.write(b'{"imageSetId": "' + IS.encode() + b'", "imageFr')
    report = ResumeReport()
    verified = read_verified(tmp_path, report=report)
    assert set(verified) == {(IS, frame_id(1)), (IS, frame_id(4))}
    assert report.files_failed == 1 and report.malformed_lines == 0
    assert (tmp_path / "index.jsonl").read_bytes().endswith(b"\n")
    _journal_with(tmp_path, [FrameResult(_ref(3, 5), "verified", None, 5, None)])
    assert (IS, frame_id(3)) in read_verified(tmp_path)


def test_a_torn_line_longer_than_one_read_block_is_cut_keeping_every_whole_line(
        tmp_path: Path) -> None:
    _journal_with(tmp_path, [_written(tmp_path, n) for n in (1, 2)])
    whole = (tmp_path / "index.jsonl").read_bytes()
    with open(tmp_path / "index.jsonl", "ab") as fh:
        fh.write(b'{"imageSetId": "' + b"z" * 200_000)
    assert set(read_verified(tmp_path)) == {(IS, frame_id(1)), (IS, frame_id(2))}
    assert (tmp_path / "index.jsonl").read_bytes() == whole


def test_a_file_changed_since_it_was_written_is_fetched_again(tmp_path: Path) -> None:
    flipped, shorter, same = (_written(tmp_path, n, body=b"abcd") for n in (1, 2, 3))
    _journal_with(tmp_path, [flipped, shorter, same])
    assert flipped.path is not None and shorter.path is not None
    flipped.path.write_bytes(b"abce")  # same size, one bit off
    shorter.path.write_bytes(b"abc")
    report = ResumeReport()
    assert set(read_verified(tmp_path, "jph", report=report)) == {(IS, frame_id(3))}
    assert report.files_failed == 2
    assert "2 frame(s) journaled as verified" in " ".join(report.warnings())


def test_an_entry_naming_a_file_other_than_the_frames_own_is_not_trusted(
        tmp_path: Path) -> None:
    (tmp_path / IS).mkdir()
    elsewhere = tmp_path / IS / "a.jph"
    elsewhere.write_bytes(b"x")
    size, file_crc = file_checksum(str(elsewhere))
    _journal_with(tmp_path, [FrameResult(_ref(1, 5), "verified", "image/jph", 5, elsewhere,
                                         file_bytes=size, file_crc32=file_crc)])
    assert read_verified(tmp_path, "jph") == {}
    assert read_verified(tmp_path) == {}


def test_an_entry_without_a_file_checksum_on_record_is_fetched_again(tmp_path: Path) -> None:
    old = _written(tmp_path, 1)
    _journal_with(tmp_path, [FrameResult(old.ref, "verified", "image/jph", 5, old.path)])
    assert read_verified(tmp_path, "jph") == {}


def test_lines_that_are_not_entries_are_counted_and_skipped(tmp_path: Path) -> None:
    _journal_with(tmp_path, [_written(tmp_path, 1)])
    with open(tmp_path / "index.jsonl", "ab") as fh:
        fh.write(b"not json\n[1, 2]\n")
        fh.write(json.dumps({"imageSetId": "../../etc", "imageFrameId": frame_id(2),
                             "status": "verified", "path": None}).encode() + b"\n")
    report = ResumeReport()
    assert set(read_verified(tmp_path, report=report)) == {(IS, frame_id(1))}
    assert report.malformed_lines == 3
    assert "3 line(s) of index.jsonl" in " ".join(report.warnings())


def test_verify_existing_decodes_each_file_against_the_metadata_checksum(
        tmp_path: Path) -> None:
    pixels = ct_pixels(64, 48)
    scratch = tmp_path / "scratch.npy"
    np.save(scratch, pixels)
    npy = scratch.read_bytes()
    good = _written(tmp_path, 1, "npy", body=npy, expected=crc(pixels))
    bad = _written(tmp_path, 2, "npy", body=npy, expected=crc(pixels) ^ 1)
    _journal_with(tmp_path, [good, bad])
    assert set(read_verified(tmp_path, "npy")) == {(IS, frame_id(1)), (IS, frame_id(2))}
    report = ResumeReport()
    kept = read_verified(tmp_path, "npy", verify_existing=True, report=report)
    assert set(kept) == {(IS, frame_id(1))} and report.files_failed == 1


def test_leftover_tmp_files_are_removed(tmp_path: Path) -> None:
    (tmp_path / IS).mkdir()
    (tmp_path / IS / "a.jph.tmp").write_bytes(b"half")
    (tmp_path / IS / "b.jph").write_bytes(b"whole")
    assert remove_leftover_tmp(tmp_path) == 1
    assert [p.name for p in (tmp_path / IS).iterdir()] == ["b.jph"]


def test_resume_skips_only_frames_whose_file_is_in_the_format_asked_for(
        tmp_path: Path) -> None:
    _journal_with(tmp_path, [
        _written(tmp_path, 1),
        FrameResult(_ref(2, 5), "verified", "image/jph", 5, None),  # written with none
    ])
    assert set(read_verified(tmp_path, "jph")) == {(IS, frame_id(1))}
    assert read_verified(tmp_path, "npy") == {}  # an npy run must write .npy files
    assert read_verified(tmp_path, "raw") == {}
    assert set(read_verified(tmp_path, "none")) == {(IS, frame_id(1)), (IS, frame_id(2))}
    entry = read_verified(tmp_path, "jph")[(IS, frame_id(1))]
    assert (entry.path, entry.actual_crc32, entry.content_type) == (
        f"{IS}/{frame_id(1)}.jph", 5, "image/jph")


def test_leftover_summary_tmp_is_removed_too(tmp_path: Path) -> None:
    (tmp_path / "summary.json.tmp").write_text("{")
    (tmp_path / IS).mkdir()
    (tmp_path / IS / "f.npy.tmp").write_bytes(b"x")
    assert remove_leftover_tmp(tmp_path) == 2
    assert not list(tmp_path.rglob("*.tmp"))
