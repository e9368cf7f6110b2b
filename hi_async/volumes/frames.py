"""What the metadata says about each frame's place in space and time. Pure.

One :class:`FrameInfo` per entry of an instance's ``ImageFrames``, keyed by the frame's
ID so the planner's result can route decoded frames. Two layouts of the same facts:

- one frame per instance (CT Image, MR Image, ...): the instance's own attributes
  (ImagePositionPatient, ImageOrientationPatient, PixelSpacing, RescaleSlope, ...);
- enhanced multi-frame (Enhanced CT/MR, ...): functional group macros, per frame in
  PerFrameFunctionalGroupsSequence item *i* (frame *i + 1*, the order of ImageFrames),
  else in SharedFunctionalGroupsSequence, else (as legacy-converted files do) at the top
  level of the instance. The macros and attributes read are those of DICOM PS3.3
  C.7.6.16 (Multi-frame Functional Groups) and C.8.13.5 / C.8.15.3 (MR and CT).

Rows, columns, samples and the stored dtype come from :func:`hi_async.metadata.parse_metadata`
(``FrameRef.dtype``), so frames and volumes agree on them by construction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..metadata import parse_metadata
from ..model import FrameRef
from .values import Attrs, dicom_time, first_float, first_int, floats, item, sequence, text, texts

#: Macro holding each attribute in enhanced multi-frame instances (PS3.3 C.7.6.16.2).
_MACRO = {
    "PixelSpacing": "PixelMeasuresSequence",
    "SliceThickness": "PixelMeasuresSequence",
    "SpacingBetweenSlices": "PixelMeasuresSequence",
    "ImagePositionPatient": "PlanePositionSequence",
    "ImageOrientationPatient": "PlaneOrientationSequence",
    "RescaleSlope": "PixelValueTransformationSequence",
    "RescaleIntercept": "PixelValueTransformationSequence",
    "RescaleType": "PixelValueTransformationSequence",
    "WindowCenter": "FrameVOILUTSequence",
    "WindowWidth": "FrameVOILUTSequence",
    "TemporalPositionIndex": "FrameContentSequence",
    "FrameAcquisitionNumber": "FrameContentSequence",
    "StackID": "FrameContentSequence",
    "FrameAcquisitionDateTime": "FrameContentSequence",
    "EffectiveEchoTime": "MREchoSequence",
    "NominalCardiacTriggerDelayTime": "CardiacSynchronizationSequence",
}
#: Frame type macros: FrameType there plays the part ImageType plays in classic images.
_FRAME_TYPE_MACROS = ("MRImageFrameTypeSequence", "CTImageFrameTypeSequence",
                      "PETFrameTypeSequence", "XAXRFFrameCharacteristicsSequence")


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """One frame's geometry and the values that tell it apart from its neighbours."""

    frame_id: str
    series_instance_uid: str
    sop_instance_uid: str
    frame_number: int  # 1-based within the instance, the order of ImageFrames
    instance_number: int | None
    rows: int
    columns: int
    samples_per_pixel: int
    dtype: str  # FrameRef.dtype: the stored numpy dtype
    photometric: str | None
    orientation: tuple[float, ...] | None  # ImageOrientationPatient: row dir, column dir
    position: tuple[float, ...] | None  # ImagePositionPatient of the first pixel (LPS, mm)
    pixel_spacing: tuple[float, ...] | None  # (between rows, between columns), mm
    slice_thickness: float | None
    spacing_between_slices: float | None
    slope: float
    intercept: float
    window: tuple[float, float] | None  # (center, width), first values
    temporal_index: int | None  # TemporalPositionIndex, else TemporalPositionIdentifier
    trigger_time: float | None  # ms after the R wave (classic or the cardiac macro)
    acquisition_time: float | None  # seconds since midnight
    echo_number: int | None
    echo_time: float | None  # ms
    acquisition_number: int | None
    localizer: bool
    rescale_type: str | None = None


def series_frames(doc: Mapping[str, Any]) -> Iterator[tuple[str, Attrs, list[FrameInfo]]]:
    """(SeriesInstanceUID, series attributes, frames) for each series of the document.

    Raises MetadataError (from the shared parser) when the document itself is malformed.
    """
    image_set_id = str(doc.get("ImageSetID") or "")
    refs = {ref.image_frame_id: ref
            for ref in parse_metadata(doc, str(doc.get("DatastoreID") or ""), image_set_id)}
    for key, series in doc["Study"]["Series"].items():
        series_attrs: Attrs = series.get("DICOM") or {}
        uid = text(series_attrs.get("SeriesInstanceUID")) or str(key)
        frames: list[FrameInfo] = []
        for sop_uid, instance in series["Instances"].items():
            entries = instance.get("ImageFrames") or []
            attrs: Attrs = instance["DICOM"]
            frames.extend(_instance_frames(uid, str(sop_uid), attrs, series_attrs, entries,
                                           refs))
        yield uid, series_attrs, frames


def _instance_frames(series_uid: str, sop_uid: str, attrs: Attrs, series_attrs: Attrs,
                     entries: list[Any], refs: Mapping[str, FrameRef]) -> Iterator[FrameInfo]:
    shared = item(attrs.get("SharedFunctionalGroupsSequence"))
    per_frame = sequence(attrs.get("PerFrameFunctionalGroupsSequence"))
    enhanced = shared is not None or bool(per_frame)
    instance_number = first_int(attrs.get("InstanceNumber"))
    image_type = texts(attrs.get("ImageType"))
    for index, entry in enumerate(entries):
        ref = refs[entry["ID"]]
        groups = per_frame[index] if index < len(per_frame) else None

        def get(name: str, groups: Attrs | None = groups) -> Any:
            """Per-frame macro, shared macro, instance, series: the first that has it."""
            macro = _MACRO.get(name)
            if enhanced and macro is not None:
                for source in (groups, shared):
                    inner = item(source.get(macro)) if source is not None else None
                    if inner is not None and inner.get(name) is not None:
                        return inner[name]
            value = attrs.get(name)
            return value if value is not None else series_attrs.get(name)

        frame_type = _frame_type(groups, shared) if enhanced else ()
        center, width = first_float(get("WindowCenter")), first_float(get("WindowWidth"))
        temporal = first_int(get("TemporalPositionIndex"))
        if temporal is None:
            temporal = first_int(attrs.get("TemporalPositionIdentifier"))
        trigger = first_float(get("NominalCardiacTriggerDelayTime")) if enhanced else None
        if trigger is None:
            trigger = first_float(attrs.get("TriggerTime"))
        acq_time = _frame_time(get("FrameAcquisitionDateTime")) if enhanced else None
        if acq_time is None:
            acq_time = dicom_time(attrs.get("AcquisitionTime") or attrs.get("ContentTime"))
        echo_time = first_float(get("EffectiveEchoTime")) if enhanced else None
        if echo_time is None:
            echo_time = first_float(attrs.get("EchoTime"))
        acquisition = first_int(get("FrameAcquisitionNumber")) if enhanced else None
        if acquisition is None:
            acquisition = first_int(attrs.get("AcquisitionNumber"))
        slope = first_float(get("RescaleSlope"))
        intercept = first_float(get("RescaleIntercept"))
        yield FrameInfo(
            frame_id=ref.image_frame_id,
            series_instance_uid=series_uid,
            sop_instance_uid=sop_uid,
            frame_number=index + 1,
            instance_number=instance_number,
            rows=ref.rows,
            columns=ref.columns,
            samples_per_pixel=ref.samples_per_pixel,
            dtype=ref.dtype,
            photometric=text(attrs.get("PhotometricInterpretation")),
            orientation=floats(get("ImageOrientationPatient"), 6),
            position=floats(get("ImagePositionPatient"), 3),
            pixel_spacing=floats(get("PixelSpacing"), 2),
            slice_thickness=first_float(get("SliceThickness")),
            spacing_between_slices=first_float(get("SpacingBetweenSlices")),
            # A slope of 0 would erase the image; DICOM requires it non-zero, so treat a
            # 0 (seen in damaged files) as absent.
            slope=slope if slope else 1.0,
            intercept=intercept if intercept is not None else 0.0,
            window=(center, width) if center is not None and width else None,
            temporal_index=temporal,
            trigger_time=trigger,
            acquisition_time=acq_time,
            echo_number=first_int(attrs.get("EchoNumbers")),
            echo_time=echo_time,
            acquisition_number=acquisition,
            localizer="LOCALIZER" in image_type or "LOCALIZER" in frame_type,
            rescale_type=text(get("RescaleType")),
        )


def _frame_type(groups: Attrs | None, shared: Attrs | None) -> tuple[str, ...]:
    for source in (groups, shared):
        if source is None:
            continue
        for macro in _FRAME_TYPE_MACROS:
            inner = item(source.get(macro))
            if inner is not None and inner.get("FrameType") is not None:
                return texts(inner["FrameType"])
    return ()


def _frame_time(value: Any) -> float | None:
    """The time part of a DT value (``YYYYMMDDHHMMSS.FFFFFF&ZZXX``) as seconds of the day."""
    raw = text(value)
    if raw is None or len(raw) < 10:
        return None
    for sign in "+-":
        raw = raw.split(sign, 1)[0]  # drop a UTC offset
    return dicom_time(raw[8:])
