"""Remove what a run created, in the order the services require, tolerating what is gone.

Image sets first (a data store with image sets cannot be deleted), then the data store,
then the buckets' contents (CloudFormation cannot delete a bucket that holds objects),
then the stack, which deletes the buckets and the role. Each step treats "not found" as
done, so clean-up can be run again after an interruption at any point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from ..errors import NotFound
from .clients import call
from .deploy import delete_stack, stack_status
from .state import StateFile

Say = Callable[[str], None]


async def _search_image_sets(mi: Any, datastore_id: str) -> list[str]:
    ids: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"datastoreId": datastore_id, "maxResults": 50}
        if token:
            kwargs["nextToken"] = token
        page = await call(f"list image sets of {datastore_id}",
                          mi.search_image_sets(**kwargs))
        ids.extend(s["imageSetId"] for s in page.get("imageSetsMetadataSummaries", []))
        token = page.get("nextToken")
        if not token:
            return ids


async def delete_image_sets(mi: Any, datastore_id: str, known: list[str], *,
                            concurrency: int = 4) -> int:
    """Delete every image set of the data store (searched, plus ``known``); returns count."""
    try:
        found = await _search_image_sets(mi, datastore_id)
    except NotFound:
        return 0
    ids = list(dict.fromkeys([*known, *found]))
    deleted = 0
    limit = anyio.Semaphore(concurrency)

    async def one(image_set_id: str) -> None:
        nonlocal deleted
        async with limit:
            try:
                await call(f"delete image set {image_set_id}", mi.delete_image_set(
                    datastoreId=datastore_id, imageSetId=image_set_id))
                deleted += 1
            except NotFound:
                pass

    async with anyio.create_task_group() as tg:
        for image_set_id in ids:
            tg.start_soon(one, image_set_id)
    # DeleteImageSet is asynchronous; the data store can go only once they are gone.
    delay = 0.05
    with anyio.fail_after(600):
        while await _search_image_sets(mi, datastore_id):
            await anyio.sleep(delay)
            delay = min(delay * 2, 5.0)
    return deleted


async def wait_for_import_jobs(mi: Any, datastore_id: str, say: Say, *,
                               give_up_after: float = 900.0) -> None:
    """Wait until no import job of the data store is SUBMITTED or IN_PROGRESS.

    A run interrupted right after StartDICOMImportJob leaves the job running in the
    service; the data store cannot be deleted (ConflictException) until it ends, and the
    image sets it is about to create must be deleted after it ends, not before.
    """
    delay, told = 0.1, False
    with anyio.fail_after(give_up_after):
        while True:
            try:
                running = 0
                for status in ("SUBMITTED", "IN_PROGRESS"):
                    page = await call(f"list the import jobs of data store {datastore_id}",
                                      mi.list_dicom_import_jobs(datastoreId=datastore_id,
                                                                jobStatus=status))
                    running += len(page.get("jobSummaries", []))
            except NotFound:
                return
            if not running:
                return
            if not told:
                say(f"waiting for {running} import job(s) to end before deleting "
                    f"data store {datastore_id} ...")
                told = True
            await anyio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def delete_datastore(mi: Any, datastore_id: str, *, give_up_after: float = 900.0) -> bool:
    """Delete the data store and wait until it is DELETED; False if it was already gone."""
    try:
        await call(f"delete data store {datastore_id}",
                   mi.delete_datastore(datastoreId=datastore_id))
    except NotFound:
        return False
    delay = 0.05
    with anyio.fail_after(give_up_after):
        while True:
            try:
                answer = await call(f"read data store {datastore_id}",
                                    mi.get_datastore(datastoreId=datastore_id))
            except NotFound:
                return True
            if answer["datastoreProperties"]["datastoreStatus"] == "DELETED":
                return True
            await anyio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def empty_bucket(s3: Any, bucket: str) -> int | None:
    """Delete every object (and abort every multipart upload) in ``bucket``.

    Returns how many objects went, or None when the bucket does not exist (any more).
    """
    removed = 0
    try:
        while True:
            page = await call(f"list s3://{bucket}", s3.list_objects_v2(Bucket=bucket))
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if not keys:
                break
            await call(f"empty s3://{bucket}", s3.delete_objects(
                Bucket=bucket, Delete={"Objects": keys, "Quiet": True}))
            removed += len(keys)
        uploads = await call(f"list uploads of s3://{bucket}",
                             s3.list_multipart_uploads(Bucket=bucket))
        for up in uploads.get("Uploads", []):
            await call(f"abort an upload to s3://{bucket}", s3.abort_multipart_upload(
                Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"]))
    except NotFound:
        return None
    return removed


async def cleanup(clients: Any, state_file: StateFile, say: Say = print) -> None:
    """Remove everything ``state_file`` records, updating it as each part goes."""
    state = state_file.state
    state_file.update(phase="cleaning")
    if state.datastore_id:
        await wait_for_import_jobs(clients.mi, state.datastore_id, say)
        n = await delete_image_sets(clients.mi, state.datastore_id, state.image_set_ids())
        say(f"deleted {n} image set(s)")
        if await delete_datastore(clients.mi, state.datastore_id):
            say(f"deleted data store {state.datastore_id}")
        else:
            say(f"data store {state.datastore_id} was already gone")
    for bucket in state.buckets:
        n = await empty_bucket(clients.s3, bucket)
        say(f"bucket {bucket} was already gone" if n is None
            else f"emptied s3://{bucket} ({n} object(s))")
    if state.stack_name:
        if await stack_status(clients.cfn, state.stack_id or state.stack_name) in (
                None, "DELETE_COMPLETE"):
            say(f"stack {state.stack_name} was already gone")
        else:
            await delete_stack(clients.cfn, state.stack_id or state.stack_name)
            say(f"deleted stack {state.stack_name}")
    state_file.update(phase="cleaned")
