"""``local seed``: upload a folder of DICOM files or a synthetic series to a bucket.

Works against the local stack or any S3 endpoint: aioboto3 with the standard credential
chain (the local stack accepts any key, so a machine without credentials gets a dummy
one), the bucket created when missing, uploads running concurrently in one task group.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio

from ...errors import ConfigurationError, UsageError
from .synthetic import custom_spec, generate_series

CONCURRENCY = 16

Source = Iterator[tuple[str, Callable[[], bytes]]]


def seed_from_args(args: argparse.Namespace) -> int:
    """Run ``local seed``; returns the process exit code."""
    if args.instances < 1:
        raise UsageError(f"--instances must be at least 1, not {args.instances}")
    prefix = args.prefix.strip("/")
    prefix = f"{prefix}/" if prefix else ""
    if args.dicom_dir:
        source = _folder(Path(args.dicom_dir), prefix)
    else:
        spec = custom_spec(args.synthetic, args.instances, args.rows, args.columns)
        base = prefix or f"{spec.folder}/"
        source = ((f"{base}{name}", _const(data)) for name, data in generate_series(spec))
    try:
        count, size = anyio.run(_upload, args.endpoint_url, args.bucket, source)
    except BaseExceptionGroup as group:
        raise _seed_error(group.exceptions[0], args) from None
    except Exception as exc:
        raise _seed_error(exc, args) from None
    print(f"uploaded {count} files ({size / 1e6:.1f} MB) to s3://{args.bucket}/{prefix}")
    return 0


def _seed_error(exc: BaseException, args: argparse.Namespace) -> Exception:
    """A user-facing error for an S3 failure while seeding (no traceback)."""
    import botocore.exceptions as bx

    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code, message = err.get("Code", ""), err.get("Message", "")
        return UsageError(f"S3 refused to seed s3://{args.bucket}/: {code} {message}".strip(),
                          hint="check the bucket name (3-63 lower-case letters, digits, dots "
                          "or hyphens) and the endpoint")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        return ConfigurationError(f"the endpoint {args.endpoint_url} does not answer",
                                  hint="start the local stack with 'python -m hi_async local "
                                  "serve' or check --endpoint-url")
    if isinstance(exc, Exception):
        return exc
    raise exc


def _const(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _folder(root: Path, prefix: str) -> Source:
    if not root.is_dir():
        raise UsageError(f"--dicom-dir {root} is not a folder",
                         hint="point it at a folder of DICOM files (searched recursively)")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise UsageError(f"--dicom-dir {root} holds no files")
    # Checked above, before any upload starts; the files are read lazily by the workers.
    return ((f"{prefix}{p.relative_to(root).as_posix()}", p.read_bytes) for p in files)


async def _upload(endpoint_url: str, bucket: str, source: Source) -> tuple[int, int]:
    import aioboto3

    session = aioboto3.Session()
    creds = {} if await session.get_credentials() else {
        "aws_access_key_id": "local", "aws_secret_access_key": "local"}
    region = session.region_name or "us-east-1"
    totals = [0, 0]
    async with session.client("s3", endpoint_url=endpoint_url, region_name=region,
                              **creds) as s3:
        try:
            await s3.head_bucket(Bucket=bucket)
        except s3.exceptions.ClientError:
            await s3.create_bucket(Bucket=bucket)
        send, receive = anyio.create_memory_object_stream[tuple[str, Callable[[], bytes]]](
            max_buffer_size=CONCURRENCY)

        async def worker(items: anyio.abc.ObjectReceiveStream) -> None:
            async with items:
                async for key, read in items:
                    body = await anyio.to_thread.run_sync(read)
                    await s3.put_object(Bucket=bucket, Key=key, Body=body)
                    totals[0] += 1
                    totals[1] += len(body)
                    print(f"s3://{bucket}/{key}", file=sys.stdout, flush=True)

        async with anyio.create_task_group() as tg:
            async with receive:
                for _ in range(CONCURRENCY):
                    tg.start_soon(worker, receive.clone())
            async with send:
                for item in source:
                    await send.send(item)
    return totals[0], totals[1]
