"""Where an instance's file goes, and that a file under its name is always whole."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import config
from pydicom.dataelem import DataElement

from hi_async.dicom import InstanceFrame, UnsafeName, instance_path, write_instance
from hi_async.dicom.errors import BadAttribute, UnsupportedPixelData
from hi_async.errors import OutputError, ServiceError

from .test_instance import SERIES, SOP, document
from .test_pixels import htj2k, jph

IMAGE_SET = "a" * 32


def dataset() -> pydicom.Dataset:
    from hi_async.dicom import instance_dataset

    return instance_dataset(document(), SERIES, SOP)


def frame(seed: int = 0) -> InstanceFrame:
    pixels = np.random.default_rng(seed).integers(0, 4000, size=(8, 8)).astype(np.uint16)
    return InstanceFrame(jph(htj2k(pixels)), "image/jph", pixels)


def test_the_path_is_image_set_series_instance(tmp_path: Path) -> None:
    assert instance_path(tmp_path, IMAGE_SET, SERIES, SOP) == \
        tmp_path / IMAGE_SET / SERIES / f"{SOP}.dcm"


@pytest.mark.parametrize("uid", ["", ".", "..", "../etc", "1.2/3", "1.2\\3", "1.2.abc",
                                 " 1.2", "1.2\x00", ".1.2", "1" * 129, None])
def test_anything_but_a_uid_is_refused_as_a_name(tmp_path: Path, uid: object) -> None:
    with pytest.raises(UnsafeName, match="is not a DICOM UID"):
        instance_path(tmp_path, IMAGE_SET, uid, SOP)  # type: ignore[arg-type]
    with pytest.raises(UnsafeName, match="SOPInstanceUID"):
        instance_path(tmp_path, IMAGE_SET, SERIES, uid)  # type: ignore[arg-type]


def test_an_image_set_id_the_service_could_not_have_sent_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match=re.escape("image set ID '../x'")):
        instance_path(tmp_path, "../x", SERIES, SOP)


def test_a_written_file_reads_back_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = instance_path(tmp_path, IMAGE_SET, SERIES, SOP)
    assert write_instance(path, dataset(), [frame()], "native") == path
    back = pydicom.dcmread(path, force=False)
    assert back.SOPInstanceUID == SOP and back.file_meta.TransferSyntaxUID == \
        "1.2.840.10008.1.2.1"
    assert back.preamble == bytes(128)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_write_that_fails_midway_leaves_neither_file_nor_temporary(tmp_path: Path) -> None:
    path = instance_path(tmp_path, IMAGE_SET, SERIES, SOP)
    broken = dataset()
    # NumberOfSlices is US: 70000 does not fit in 16 bits, so writing it fails midway.
    broken.add(DataElement(0x00540081, "US", 70000, validation_mode=config.IGNORE))
    with pytest.raises(BadAttribute, match=r"has a value that cannot be written: .*0054,0081"):
        write_instance(path, broken, [frame()], "stored")
    assert list(path.parent.iterdir()) == []


def test_a_failed_rewrite_keeps_the_file_already_there(tmp_path: Path) -> None:
    path = instance_path(tmp_path, IMAGE_SET, SERIES, SOP)
    write_instance(path, dataset(), [frame(1)], "stored")
    before = path.read_bytes()
    with pytest.raises(UnsupportedPixelData):
        write_instance(path, dataset(), [frame(2), frame(3)], "stored")  # 2 frames, 1 said
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_file_system_refusal_is_an_output_error(tmp_path: Path) -> None:
    path = instance_path(tmp_path, IMAGE_SET, SERIES, SOP)
    path.parent.parent.mkdir()
    path.parent.write_bytes(b"a file where the series folder should be")
    with pytest.raises(OutputError, match="cannot write"):
        write_instance(path, dataset(), [frame()], "stored")
