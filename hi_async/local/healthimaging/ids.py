"""Identifiers and ARNs of the emulated HealthImaging service.

The service's IDs (data store, image set, image frame, import job) are 32 characters of
``[0-9a-z]``; a random UUID's hex form is exactly that, so generation needs no state.
The patterns are compiled once here because the request path checks them per request.
"""

from __future__ import annotations

import re
import uuid

ACCOUNT_ID = "123456789012"  # moto's default account; the emulator answers for it too.
DEFAULT_REGION = "us-east-1"

ID_RE = re.compile(r"[0-9a-z]{32}")
JOB_ID_RE = re.compile(r"[0-9a-z]{1,32}")
VERSION_RE = re.compile(r"\d+")
ARN_RE = re.compile(
    r"arn:aws((-us-gov)|(-iso)|(-iso-b)|(-cn))?:medical-imaging:([a-z0-9-]+):([0-9]{12}):"
    r"datastore/([0-9a-z]{32})(/imageset/([0-9a-z]{32}))?"
)


def new_id() -> str:
    """A fresh service ID (32 lowercase hex characters)."""
    return uuid.uuid4().hex


def is_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


def datastore_arn(region: str, account: str, datastore_id: str) -> str:
    return f"arn:aws:medical-imaging:{region}:{account}:datastore/{datastore_id}"


def image_set_arn(region: str, account: str, datastore_id: str, image_set_id: str) -> str:
    return f"{datastore_arn(region, account, datastore_id)}/imageset/{image_set_id}"


def parse_arn(arn: str) -> tuple[str, str, str, str | None] | None:
    """``(region, account, datastore_id, image_set_id or None)``, or None if malformed."""
    m = ARN_RE.fullmatch(arn)
    if m is None:
        return None
    return m.group(6), m.group(7), m.group(8), m.group(10)
