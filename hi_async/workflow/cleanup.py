"""Remove what a run created, in the order the services require, tolerating what is gone.

Image sets first (a data store with image sets cannot be deleted), then the data store,
then the buckets' contents (CloudFormation cannot delete a bucket that holds objects),
then the stack, which deletes the buckets and the role. Each step treats "not found" as
done, so clean-up can be run again after an interruption at any point.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import anyio

from ..aws.session import poll_delays
from ..errors import NotFound
from .clients import Clients
from .deploy import delete_stack, stack_status
from .state import StateFile

Say = Callable[[str], None]


async def _image_set_ids(clients: Clients, datastore_id: str) -> list[str]:
    return [str(i) async for i in clients.hi.image_set_ids(datastore_id)]


async def delete_image_sets(clients: Clients, datastore_id: str, known: list[str], *,
                            concurrency: int = 4, give_up_after: float = 600.0) -> int:
    """Delete every image set of the data store (searched, plus ``known``); returns count."""
    try:
        found = await _image_set_ids(clients, datastore_id)
    except NotFound:
        return 0
    ids = list(dict.fromkeys([*known, *found]))
    deleted = 0
    limit = anyio.Semaphore(concurrency)

    async def one(image_set_id: str) -> None:
        nonlocal deleted
        async with limit:
            try:
                await clients.hi.delete_image_set(datastore_id, image_set_id)
                deleted += 1
            except NotFound:
                pass

    async with anyio.create_task_group() as tg:
        for image_set_id in ids:
            tg.start_soon(one, image_set_id)
    # DeleteImageSet is asynchronous; the data store can go only once they are gone.
    delays = poll_delays()
    with anyio.fail_after(give_up_after):
        while True:
            if not await _image_set_ids(clients, datastore_id):
                return deleted
            await anyio.sleep(next(delays))


async def wait_for_import_jobs(clients: Clients, datastore_id: str, say: Say, *,
                               give_up_after: float = 900.0) -> None:
    """Wait until no import job of the data store is SUBMITTED or IN_PROGRESS.

    A run interrupted right after StartDICOMImportJob leaves the job running in the
    service; the data store cannot be deleted (ConflictException) until it ends, and the
    image sets it is about to create must be deleted after it ends, not before.
    """
    told = False
    delays = poll_delays()
    with anyio.fail_after(give_up_after):
        while True:
            try:
                running = await clients.hi.running_import_jobs(datastore_id)
            except NotFound:
                return
            if not running:
                return
            if not told:
                say(f"waiting for {running} import job(s) to end before deleting "
                    f"data store {datastore_id} ...")
                told = True
            await anyio.sleep(next(delays))


async def delete_datastore(clients: Clients, datastore_id: str, *,
                           give_up_after: float = 900.0) -> bool:
    """Delete the data store and wait until it is DELETED; False if it was already gone."""
    try:
        await clients.hi.delete_datastore(datastore_id)
    except NotFound:
        return False
    delays = poll_delays()
    with anyio.fail_after(give_up_after):
        while True:
            if await clients.hi.datastore_status(datastore_id) in (None, "DELETED"):
                return True
            await anyio.sleep(next(delays))


async def empty_bucket(clients: Clients, bucket: str) -> int | None:
    """Delete every object (and abort every multipart upload) in ``bucket``.

    Returns how many objects went, or None when the bucket does not exist (any more).
    """
    s3 = clients.s3
    removed = 0
    try:
        while True:
            page = await clients.call(f"list s3://{bucket}",
                                      lambda: s3.list_objects_v2(Bucket=bucket))
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if not keys:
                break
            await clients.call(f"empty s3://{bucket}", functools.partial(
                s3.delete_objects, Bucket=bucket, Delete={"Objects": keys, "Quiet": True}))
            removed += len(keys)
        uploads = await clients.call(f"list uploads of s3://{bucket}",
                                     lambda: s3.list_multipart_uploads(Bucket=bucket))
        for up in uploads.get("Uploads", []):
            await clients.call(f"abort an upload to s3://{bucket}", functools.partial(
                s3.abort_multipart_upload, Bucket=bucket, Key=up["Key"],
                UploadId=up["UploadId"]))
    except NotFound:
        return None
    return removed


async def cleanup(clients: Clients, state_file: StateFile, say: Say = print) -> None:
    """Remove everything ``state_file`` records, updating it as each part goes."""
    state = state_file.state
    state_file.update(phase="cleaning")
    if state.datastore_id:
        await wait_for_import_jobs(clients, state.datastore_id, say)
        deleted = await delete_image_sets(clients, state.datastore_id, state.image_set_ids())
        say(f"deleted {deleted} image set(s)")
        if await delete_datastore(clients, state.datastore_id):
            say(f"deleted data store {state.datastore_id}")
        else:
            say(f"data store {state.datastore_id} was already gone")
    for bucket in state.buckets:
        n = await empty_bucket(clients, bucket)
        say(f"bucket {bucket} was already gone" if n is None
            else f"emptied s3://{bucket} ({n} object(s))")
    if state.stack_name:
        stack = state.stack_id or state.stack_name
        if await stack_status(clients, stack) in (None, "DELETE_COMPLETE"):
            say(f"stack {state.stack_name} was already gone")
        else:
            await delete_stack(clients, stack)
            say(f"deleted stack {state.stack_name}")
    state_file.update(phase="cleaned")
