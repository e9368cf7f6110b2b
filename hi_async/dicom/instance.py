"""One instance's DICOM dataset (everything but its pixel data) from image set metadata.

HealthImaging splits an instance's attributes over four levels of the metadata document:
Patient, Study and Series hold the attributes the image set shares, the instance the rest
(file meta included). They are merged back, the most specific level winning should a name
appear twice, and converted by ``attributes.py``. The File Meta Information is written
anew (PS3.10 section 7.1): this writer's Implementation Class UID and Version Name, and the
Transfer Syntax UID of the instance as stored, which ``pixels.py`` changes when the pixels
are written in another syntax. What cannot come back is removed or noted by ``losses.py``.

Pure: a parsed metadata document in, a dataset out; runs anywhere, worker processes too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

from .. import __version__
from ..model import DEFAULT_STORED_TRANSFER_SYNTAX
from .attributes import Rebuild, dataset_from_attributes, tag_of
from .errors import BadAttribute, InstanceNotFound
from .losses import add_note, repair_and_list_losses

#: hi_async's own UID root: a UUID-derived root (PS3.5 B.2), fixed for good.
UID_ROOT = "2.25.2034983159967849359332898504041460704"
IMPLEMENTATION_CLASS_UID = UID_ROOT + ".1"
#: SH, at most 16 characters.
IMPLEMENTATION_VERSION_NAME = f"HI_ASYNC_{__version__}"[:16]

#: Transfer syntaxes that are lossy whatever the stream holds (PS3.5 section 8.2).
_LOSSY_ONLY = frozenset({
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
    *(f"1.2.840.10008.1.2.4.{n}" for n in range(100, 109)),
    "1.2.840.10008.1.2.4.100.1", "1.2.840.10008.1.2.4.101.1",
    *(f"1.2.840.10008.1.2.4.{n}.1" for n in range(102, 107)),
})
#: Pixel data, and the offset tables that describe the original encapsulation of it.
_PIXEL_TAGS = frozenset({0x7FE00001, 0x7FE00002, 0x7FE00008, 0x7FE00009, 0x7FE00010})


@dataclass(frozen=True, slots=True)
class InstanceBuild:
    """An instance's dataset and what the export needs to know about it."""

    dataset: Dataset
    image_set_id: str
    series_uid: str
    sop_uid: str
    #: StoredTransferSyntaxUID: how the frames are stored and served.
    stored_transfer_syntax: str
    #: The transfer syntax of the file that was imported (from its file meta).
    original_transfer_syntax: str | None
    frame_ids: tuple[str, ...]
    #: What the service could not give back; non-empty means the file carries a note.
    losses: tuple[str, ...]
    #: Paths of elements whose VR had to be inferred (see ``attributes.py``).
    inferred_vrs: tuple[str, ...]


def instance_dataset(doc: Mapping[str, Any], series_uid: str, sop_uid: str) -> Dataset:
    """The instance's dataset with File Meta Information, without pixel data."""
    return build_instance(doc, series_uid, sop_uid).dataset


def build_instance(doc: Mapping[str, Any], series_uid: str, sop_uid: str) -> InstanceBuild:
    """:func:`instance_dataset` plus the facts the export needs (frames, losses)."""
    image_set_id = str(doc.get("ImageSetID") or "")
    series, instance = _locate(doc, image_set_id, series_uid, sop_uid)
    merged: dict[str, Any] = {}
    for level in (_dicom(doc.get("Patient")), _dicom(doc.get("Study")), _dicom(series),
                  _dicom(instance)):
        merged.update(level)
    hints = instance.get("DICOMVRs") or {}
    if not isinstance(hints, Mapping):
        raise BadAttribute(f"DICOMVRs of instance {sop_uid} is not an object")
    body = {name: value for name, value in merged.items() if _belongs_in_body(name)}
    rebuild = Rebuild(vr_hints=hints,
                      pixel_representation=_int_or_zero(merged.get("PixelRepresentation")))
    ds = dataset_from_attributes(body, rebuild)
    _check_uids(ds, series_uid, sop_uid)
    original_ts = merged.get("TransferSyntaxUID")
    if original_ts in _LOSSY_ONLY and "LossyImageCompression" not in ds:
        ds.LossyImageCompression = "01"
    losses = repair_and_list_losses(ds, rebuild.by_reference)
    add_note(ds, losses, __version__)
    stored = str(instance.get("StoredTransferSyntaxUID") or DEFAULT_STORED_TRANSFER_SYNTAX)
    ds.file_meta = file_meta(ds, stored, merged.get("MediaStorageSOPClassUID"))
    frames = instance.get("ImageFrames") or []
    if not isinstance(frames, list):
        raise BadAttribute(f"ImageFrames of instance {sop_uid} is not a list")
    return InstanceBuild(
        dataset=ds, image_set_id=image_set_id, series_uid=series_uid, sop_uid=sop_uid,
        stored_transfer_syntax=stored,
        original_transfer_syntax=str(original_ts) if original_ts else None,
        frame_ids=tuple(str(f.get("ID")) for f in frames if isinstance(f, Mapping)),
        losses=tuple(losses), inferred_vrs=tuple(rebuild.inferred))


def file_meta(ds: Dataset, transfer_syntax: str, sop_class_fallback: Any = None,
              ) -> FileMetaDataset:
    """File Meta Information for ``ds`` written in ``transfer_syntax`` by this writer."""
    sop_class = ds.get("SOPClassUID") or sop_class_fallback
    if not sop_class:
        raise BadAttribute(f"instance {ds.get('SOPInstanceUID')} has no SOPClassUID, so its "
                           "file cannot say what it is (Media Storage SOP Class UID)")
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(str(sop_class))
    meta.MediaStorageSOPInstanceUID = UID(str(ds.SOPInstanceUID))
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _locate(doc: Mapping[str, Any], image_set_id: str, series_uid: str, sop_uid: str,
            ) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    study = doc.get("Study")
    all_series = study.get("Series") if isinstance(study, Mapping) else None
    if not isinstance(all_series, Mapping):
        raise InstanceNotFound(f"the metadata of image set {image_set_id} has no Study or "
                               "Series object")
    series = all_series.get(series_uid)
    if not isinstance(series, Mapping):
        raise InstanceNotFound(f"image set {image_set_id} has no series {series_uid}",
                               hint=f"it has {', '.join(map(str, all_series)) or 'none'}")
    instances = series.get("Instances")
    instance = instances.get(sop_uid) if isinstance(instances, Mapping) else None
    if not isinstance(instance, Mapping):
        raise InstanceNotFound(f"series {series_uid} of image set {image_set_id} has no "
                               f"instance {sop_uid}")
    return series, instance


def _dicom(level: Any) -> Mapping[str, Any]:
    dicom = level.get("DICOM") if isinstance(level, Mapping) else None
    return dicom if isinstance(dicom, Mapping) else {}


def _belongs_in_body(name: str) -> bool:
    """Not file meta (written anew), not pixel data, not a group length."""
    tag = tag_of(name)
    return tag >> 16 != 0x0002 and tag not in _PIXEL_TAGS and tag & 0xFFFF != 0


def _int_or_zero(value: Any) -> int:
    try:
        return int(str(value).strip()) if value is not None else 0
    except ValueError:
        return 0


def _check_uids(ds: Dataset, series_uid: str, sop_uid: str) -> None:
    """The document's keys and the attributes must agree: the keys name the file."""
    if "SOPInstanceUID" not in ds:
        ds.SOPInstanceUID = sop_uid
    if "SeriesInstanceUID" not in ds:
        ds.SeriesInstanceUID = series_uid
    for keyword, key in (("SOPInstanceUID", sop_uid), ("SeriesInstanceUID", series_uid)):
        value = str(ds.get(keyword) or "").strip()
        if value != key:
            raise BadAttribute(f"instance {sop_uid}: {keyword} is {value!r} but the metadata "
                               f"files the instance under {key!r}")
    if not ds.get("StudyInstanceUID"):
        raise BadAttribute(f"instance {sop_uid} has no StudyInstanceUID")
