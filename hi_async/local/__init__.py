"""The local stack: one HTTP endpoint for a HealthImaging emulator and moto's AWS services.

Sub-packages, each importing only those listed after it: ``data`` (synthetic series, the
public data bucket, ``local seed``), ``dicom_import`` (import jobs), ``aws`` (moto,
CloudFormation as AWS runs it, SSM, signatures, in-process S3) and ``healthimaging`` (the
service).
The modules here run the stack: ``stack`` (:class:`~.stack.LocalStack`), ``serve``
(``local serve``), ``runtime``, ``server``, ``control_access`` (who may use the control
routes), ``realism`` and ``config``.
"""
