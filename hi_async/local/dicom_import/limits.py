"""The service's limits on the input of one import job."""

from __future__ import annotations

#: Files per import job.
MAX_FILES = 5000
#: The service's input limit per import job (10 GB, not adjustable).
IMPORT_MAX_BYTES = 10 * 1024**3
