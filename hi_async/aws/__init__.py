"""Every AWS call hi_async makes: clients, retries and send rate, error translation, and
the HealthImaging service as the downloader and the workflow use it."""

from .errors import ErrorKind, classify, error_code, is_fatal_for_run, translate

__all__ = ["ErrorKind", "classify", "error_code", "is_fatal_for_run", "translate"]
