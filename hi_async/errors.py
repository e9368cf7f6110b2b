"""One exception tree for everything a user of hi_async can see.

Every class carries the facts a user needs, and ``str(e)`` reads as advice: what was
wrong and what to do. botocore/aiohttp exceptions are translated into these at one
boundary (``hi_async.aws``) and never leak upward.
"""

from __future__ import annotations


class HiAsyncError(Exception):
    """Root of every error hi_async raises on purpose."""

    #: Process exit code the CLI uses for this error.
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  → {hint}")


class UsageError(HiAsyncError):
    """The command line or the arguments of a library call do not make sense."""

    exit_code = 2


class ConfigurationError(HiAsyncError):
    """Settings, credentials, region or endpoint are wrong or missing."""

    exit_code = 2


class CredentialsError(ConfigurationError):
    """No credentials, or credentials the service refuses."""


class EndpointUnreachable(ConfigurationError):
    """The endpoint does not answer (wrong URL, no network, local stack not running)."""


class AccessDenied(HiAsyncError):
    """The service answered 403 for this caller."""

    #: Fixing it is configuration (the caller's IAM policy), not a frame that failed.
    exit_code = 2


class NotFound(HiAsyncError):
    """A data store, image set, job or bucket that does not exist."""

    #: The command named something that does not exist: a usage error for scripts.
    exit_code = 2


class InvalidId(UsageError):
    """An ID that does not match the service's pattern."""


class ServiceError(HiAsyncError):
    """The service answered with an error that retries did not cure."""


class JobNotReady(HiAsyncError):
    """An import job has not finished yet."""


class JobFailed(HiAsyncError):
    """An import job ended FAILED."""


class MetadataError(HiAsyncError):
    """Image set metadata that is not gzip, not JSON, too large or missing fields."""


class FrameFailed(HiAsyncError):
    """A frame that could not be downloaded, decoded or verified after its retries."""

    def __init__(self, image_set_id: str, frame_id: str, reason: str) -> None:
        self.image_set_id = image_set_id
        self.frame_id = frame_id
        self.reason = reason
        super().__init__(f"frame {frame_id} of image set {image_set_id} failed: {reason}")


class DecodeError(HiAsyncError):
    """A frame whose bytes do not decode to the pixels its metadata describes."""


class UnsupportedContentType(DecodeError):
    """A frame served with a content type hi_async cannot decode."""


class DecodePoolBroken(HiAsyncError):
    """A decode worker process died (killed, out of memory, or a script without a main guard)."""


class OutputError(HiAsyncError):
    """The output folder cannot be written (not a folder, no permission, disk full)."""

    exit_code = 2


class WorkflowError(HiAsyncError):
    """A step of the end-to-end workflow (deploy, copy, import, clean up) failed."""


class NotAvailable(HiAsyncError):
    """A capability that this build of hi_async does not offer yet."""

    exit_code = 2


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The error to show for a failed task group: a hi_async error first, then any other
    Exception, then whatever came first (cancellation, KeyboardInterrupt)."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for kind in (HiAsyncError, Exception):
        for exc in leaves:
            if isinstance(exc, kind):
                return exc
    return leaves[0] if leaves else group
