"""Data for the local stack: deterministic synthetic DICOM series, the stand-in public
bucket filled with them (``public_data``), and ``local seed``, which uploads a series to
any endpoint (``seed``).
"""
