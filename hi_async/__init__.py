"""hi_async: an asynchronous, high-throughput AWS HealthImaging frame downloader.

``hi_async.download(...)`` downloads, decodes and verifies every frame of image sets;
``async with hi_async.Downloader(settings) as dl`` is for repeated use and for
``dl.frames(...)``, which yields verified frames as they arrive, and ``dl.volumes(...)``,
which yields each series as a ``Volume`` (array, affine, spacing) as it completes. The
heavy parts (AWS SDK, codecs) are imported on first use, so ``import hi_async`` stays
cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    DecodeError,
    EndpointUnreachable,
    FrameFailed,
    HiAsyncError,
    InvalidId,
    JobFailed,
    JobNotReady,
    MetadataError,
    NotFound,
    OutputError,
    ServiceError,
    UnsupportedContentType,
    UsageError,
)
from .settings import Settings

if TYPE_CHECKING:
    from .api import Downloader, download
    from .model import Frame, FrameRef, FrameResult, ImageSetRef, Summary
    from .volumes.volume import Volume

__all__ = [
    "AccessDenied", "ConfigurationError", "CredentialsError", "DecodeError", "Downloader",
    "EndpointUnreachable", "Frame", "FrameFailed", "FrameRef", "FrameResult", "HiAsyncError",
    "ImageSetRef", "InvalidId", "JobFailed", "JobNotReady", "MetadataError", "NotFound",
    "OutputError", "ServiceError", "Settings", "Summary", "UnsupportedContentType",
    "UsageError", "Volume", "__version__", "download",
]
__version__ = "0.1.0"

_LAZY = {"Downloader": "api", "download": "api", "Frame": "model", "FrameRef": "model",
         "FrameResult": "model", "ImageSetRef": "model", "Summary": "model",
         "Volume": "volumes.volume"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hi_async' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
