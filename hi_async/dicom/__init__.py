"""DICOM Part 10 files rebuilt from HealthImaging: image set metadata plus verified frames.

The pieces, each with one job:

- :func:`instance_dataset` / :func:`build_instance` (``instance.py``): an instance's
  attributes, merged from the metadata's Patient, Study, Series and Instance levels and
  turned back into data elements (``attributes.py``), with File Meta Information of this
  writer's own; what the service could not give back is removed or noted
  (``losses.py``, whose docstring lists exactly what the round trip does not preserve).
- :func:`with_pixel_data` (``pixels.py``, ``encapsulation.py``): the frames as stored
  (encapsulated, with a Basic Offset Table) or decoded (Explicit VR Little Endian).
- :func:`instance_path` and :func:`write_instance` (``writer.py``): a safe path and an
  atomic write.
- :func:`export_instance` and :func:`export_image_set` (``export.py``): fetch, verify
  every frame, then write; an instance with a frame that fails is not written and is
  named.
"""

from __future__ import annotations

from .errors import (
    BadAttribute,
    InstanceFailed,
    InstanceNotFound,
    UnsafeName,
    UnsupportedPixelData,
)
from .export import ExportedInstance, ExportSummary, export_image_set, export_instance
from .instance import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    UID_ROOT,
    InstanceBuild,
    build_instance,
    instance_dataset,
)
from .pixels import SYNTAXES, InstanceFrame, Syntax, with_pixel_data
from .writer import instance_path, write_dataset_file, write_instance

__all__ = [
    "IMPLEMENTATION_CLASS_UID", "IMPLEMENTATION_VERSION_NAME", "SYNTAXES", "UID_ROOT",
    "BadAttribute", "ExportSummary", "ExportedInstance", "InstanceBuild", "InstanceFailed",
    "InstanceFrame", "InstanceNotFound", "Syntax", "UnsafeName", "UnsupportedPixelData",
    "build_instance", "export_image_set", "export_instance", "instance_dataset",
    "instance_path", "with_pixel_data", "write_dataset_file", "write_instance",
]
