"""What can go wrong when an image set is turned back into DICOM files.

All of them are :class:`~hi_async.errors.HiAsyncError`s, so callers that already handle
the download's errors handle these too; each names the instance (and frame) it is about,
because a user has to find that instance again to do anything about it.
"""

from __future__ import annotations

from ..errors import HiAsyncError, MetadataError, OutputError


class InstanceNotFound(MetadataError):
    """The image set metadata has no such series or instance."""


class BadAttribute(MetadataError):
    """An attribute of the metadata that cannot become a DICOM data element."""


class UnsupportedPixelData(HiAsyncError):
    """Frames this exporter cannot put into a DICOM file (video, an unknown syntax)."""


class UnsafeName(OutputError):
    """A UID or ID that cannot safely become part of a file path."""


class InstanceFailed(HiAsyncError):
    """An instance that was not written because one of its frames failed.

    ``frame_id`` is the frame that failed (None when the instance failed as a whole, for
    example because its pixel data cannot be exported).
    """

    def __init__(self, image_set_id: str, series_uid: str, sop_uid: str,
                 frame_id: str | None, reason: str) -> None:
        self.image_set_id = image_set_id
        self.series_uid = series_uid
        self.sop_uid = sop_uid
        self.frame_id = frame_id
        self.reason = reason
        where = f" (frame {frame_id})" if frame_id else ""
        super().__init__(
            f"instance {sop_uid} of series {series_uid} in image set {image_set_id} was "
            f"not written{where}: {reason}",
            hint="nothing was written for it; run the export again to retry it",
        )
