"""In-process access to moto's S3 for the import runner, the public-data bucket and
CloudFormation (emptying a bucket for the CDK's auto-delete provider, refusing to delete
a bucket that is not empty).

The emulator runs in the same process as moto, so import jobs read their input and write
their output through moto's S3 backend directly instead of over HTTP: no signing, no
sockets, and the objects are exactly those any S3 client of the local stack sees.
Calls are blocking (moto holds locks and spooled files); callers run them in threads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..healthimaging.ids import ACCOUNT_ID, DEFAULT_REGION


@dataclass(frozen=True, slots=True)
class S3Object:
    bucket: str
    key: str
    size: int


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (``bucket``, ``some/prefix``)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket")
    return bucket, prefix


class MotoS3:
    """moto's S3 backend of one account, with the few operations the importer needs."""

    def __init__(self, account_id: str | None = None) -> None:
        self.account_id = account_id or ACCOUNT_ID

    def _backend(self) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[self.account_id]["global"]

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self._backend().get_bucket(bucket)
        except Exception:
            return False
        return True

    def create_bucket(self, bucket: str, region: str = DEFAULT_REGION) -> None:
        """Create the bucket unless this account already has it."""
        if not self.bucket_exists(bucket):
            self._backend().create_bucket(bucket, region)

    def list(self, bucket: str, prefix: str) -> list[S3Object]:
        """Every object under the prefix, nested folders included, sorted by key."""
        backend = self._backend()
        keys, _, _, _ = backend.list_objects(backend.get_bucket(bucket), prefix or None,
                                             None, None, None)
        return [S3Object(bucket, k.name, int(k.size)) for k in keys]

    def read(self, bucket: str, key: str) -> bytes:
        obj = self._backend().get_object(bucket, key)
        if obj is None:
            raise FileNotFoundError(f"s3://{bucket}/{key} does not exist")
        return bytes(obj.value)

    def write(self, bucket: str, key: str, data: bytes) -> None:
        self._backend().put_object(bucket, key, data)

    # -- whole buckets (CloudFormation) ----------------------------------------------------
    def tags(self, bucket: str) -> dict[str, str]:
        """The bucket's tags (GetBucketTagging's TagSet as a mapping)."""
        backend = self._backend()
        tag_set = backend.get_bucket_tagging(bucket).get("Tags", [])
        return {t["Key"]: t["Value"] for t in tag_set}

    def set_versioning(self, bucket: str, status: str) -> None:
        """PutBucketVersioning: ``Enabled`` or ``Suspended``."""
        self._backend().put_bucket_versioning(bucket, status)

    def delete_bucket(self, bucket: str) -> None:
        self._backend().delete_bucket(bucket)

    def holds_anything(self, bucket: str) -> bool:
        """True while S3 would refuse DeleteBucket: any object, version or delete marker."""
        return bool(self._backend().get_bucket(bucket).keys)

    def add_policy_statement(self, bucket: str, statement: dict[str, Any]) -> None:
        """Append ``statement`` to the bucket policy (creating the policy if there is none)."""
        backend = self._backend()
        current = backend.get_bucket(bucket).policy
        policy: dict[str, Any] = (json.loads(current) if current
                                  else {"Version": "2012-10-17", "Statement": []})
        statements = policy.get("Statement") or []
        if isinstance(statements, dict):  # a policy may hold a single statement object
            statements = [statements]
        policy["Statement"] = [*statements, statement]
        backend.put_bucket_policy(bucket, json.dumps(policy).encode())

    def empty(self, bucket: str) -> int:
        """Delete every object version and delete marker, and abort every multipart upload.

        Returns how many versions and markers were deleted.
        """
        backend = self._backend()
        found = backend.get_bucket(bucket)
        deleted = 0
        for name, versions in list(found.keys.iterlists()):
            if not found.is_versioned:
                backend.delete_object(bucket, name)
                deleted += len(versions)
                continue
            for version in list(versions):
                # Without bypassing governance retention, as the CDK's handler does: a
                # locked version makes the emptying, and so the deletion, fail.
                backend.delete_object(bucket, name, version_id=str(version.version_id))
                deleted += 1
        for upload_id in list(found.multiparts):
            backend.abort_multipart_upload(bucket, upload_id)
        return deleted
