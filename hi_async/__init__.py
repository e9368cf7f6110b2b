"""hi_async: an asynchronous, high-throughput AWS HealthImaging frame downloader."""

from __future__ import annotations

from .errors import HiAsyncError
from .settings import Settings

__all__ = ["HiAsyncError", "Settings", "__version__"]
__version__ = "0.1.0"
