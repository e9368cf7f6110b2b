"""StartDICOMImportJob for real: DICOM P10 files in S3 become image sets.

``importer`` runs a job (S3 in, S3 out); each file is converted in a worker process by
``convert`` (attributes by ``dicom_attrs``, frames by ``transcode``, non-conformances by
``import_warnings``) into the records (:mod:`hi_async.local.healthimaging.records`) the
backend merges into image sets. ``limits`` holds the service's and the stack's limits,
``size_checks`` (with ``frame_headers``) holds files to them before anything is decoded,
and ``worker_memory`` caps each worker's memory.
"""
