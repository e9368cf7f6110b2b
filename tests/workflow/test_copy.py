"""Concurrent S3 copies, and the multipart path for objects over the CopyObject limit."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from hi_async.workflow.cleanup import empty_bucket
from hi_async.workflow.copy import copy_prefix


async def _bucket(s3: Any) -> str:
    name = f"copy-test-{secrets.token_hex(4)}"
    await s3.create_bucket(Bucket=name)
    return name


async def _body(s3: Any, bucket: str, key: str) -> bytes:
    answer = await s3.get_object(Bucket=bucket, Key=key)
    async with answer["Body"] as stream:
        return await stream.read()


async def test_copy_prefix_copies_every_object_and_only_that_prefix(clients: Any) -> None:
    s3 = clients.s3
    src, dst = await _bucket(s3), await _bucket(s3)
    bodies = {f"series/{n:03d}.dcm": secrets.token_bytes(100 + n) for n in range(45)}
    for key, body in bodies.items():
        await s3.put_object(Bucket=src, Key=key, Body=body)
    await s3.put_object(Bucket=src, Key="other/x.dcm", Body=b"not part of it")

    result = await copy_prefix(clients, src, "series/", dst, "ct/", concurrency=8)

    assert (result.objects, result.multipart) == (45, 0)
    assert result.bytes == sum(len(b) for b in bodies.values())
    listing = await s3.list_objects_v2(Bucket=dst)
    assert sorted(o["Key"] for o in listing["Contents"]) == sorted(
        "ct/" + k.removeprefix("series/") for k in bodies)
    assert await _body(s3, dst, "ct/007.dcm") == bodies["series/007.dcm"]
    for bucket in (src, dst):
        await empty_bucket(clients, bucket)
        await s3.delete_bucket(Bucket=bucket)


async def test_objects_over_the_threshold_are_copied_in_parts(clients: Any) -> None:
    s3 = clients.s3
    src, dst = await _bucket(s3), await _bucket(s3)
    big = secrets.token_bytes(11 * 1024 * 1024 + 17)  # three parts of 5 MiB at most
    await s3.put_object(Bucket=src, Key="in/big.dcm", Body=big)
    await s3.put_object(Bucket=src, Key="in/small.dcm", Body=b"small")

    result = await copy_prefix(clients, src, "in/", dst, "out/", multipart_threshold=1024 * 1024,
                               part_size=5 * 1024 * 1024)

    assert (result.objects, result.multipart) == (2, 1)
    copied = await _body(s3, dst, "out/big.dcm")
    assert hashlib.sha256(copied).digest() == hashlib.sha256(big).digest()
    assert await _body(s3, dst, "out/small.dcm") == b"small"
    uploads = await s3.list_multipart_uploads(Bucket=dst)
    assert not uploads.get("Uploads")
    for bucket in (src, dst):
        await empty_bucket(clients, bucket)
        await s3.delete_bucket(Bucket=bucket)
