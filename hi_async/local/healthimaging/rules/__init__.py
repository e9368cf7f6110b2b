"""The rules :class:`~..backend.Backend` combines: image sets, search, and the changes
made to image sets after import (with the DICOMUpdates rules of ``metadata_updates``).
"""
