"""The few S3 reads hi_async makes: an import job's manifest and its record files."""

from __future__ import annotations

import json
from typing import Any

from ..errors import ServiceError
from .session import AwsSession


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


async def read_object(aws: AwsSession, uri: str) -> bytes:
    """The whole object at ``uri`` (read inside the retry: a body cut short is re-sent)."""
    bucket, key = split_s3_uri(uri)
    s3 = await aws.client("s3")

    async def get() -> bytes:
        answer = await s3.get_object(Bucket=bucket, Key=key)
        async with answer["Body"] as body:
            return bytes(await body.read())

    return await aws.call(f"read {uri}", get)


async def read_json(aws: AwsSession, uri: str) -> dict[str, Any]:
    raw = await read_object(aws, uri)
    try:
        doc = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise ServiceError(f"{uri} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ServiceError(f"{uri} is not a JSON object")
    return doc


async def read_json_lines(aws: AwsSession, uri: str) -> list[dict[str, Any]]:
    """Each line of an ndjson object that is a JSON object (others are skipped)."""
    raw = await read_object(aws, uri)
    records: list[dict[str, Any]] = []
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            records.append(item)
    return records
