"""Which image sets to download: explicit IDs, an import job's output, or a whole data store.

IDs the user gives are checked as usage errors before any request; IDs the service sends
(search results, a job's manifest) are checked as untrusted data, since they end up in
file names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from .aws.healthimaging import HealthImaging
from .errors import UsageError
from .model import ImageSetRef
from .paths import check_id, check_job_id, check_server_id

#: How long an import job's manifest is waited for after the job is COMPLETED.
MANIFEST_WAIT_SECONDS = 10.0


def validate_selection(datastore_id: str, image_set_ids: Sequence[str] | None,
                       import_job_id: str | None, all_image_sets: bool) -> None:
    """Raise UsageError/InvalidId for a selection that cannot be right, before any request."""
    chosen = sum([bool(image_set_ids), import_job_id is not None, bool(all_image_sets)])
    if chosen != 1:
        raise UsageError(
            "choose exactly one of image_set_ids, import_job_id or all_image_sets",
            hint="on the command line: --image-set-id ID ..., --import-job-id J or --all",
        )
    check_id(datastore_id, "data store ID")
    for image_set_id in image_set_ids or ():
        check_id(image_set_id, "image set ID")
    if import_job_id is not None:
        check_job_id(import_job_id)


def select(hi: HealthImaging, datastore_id: str, *, image_set_ids: Sequence[str] | None = None,
           import_job_id: str | None = None, all_image_sets: bool = False,
           label: str | None = None) -> AsyncIterator[ImageSetRef]:
    """The image sets a selection names; exactly one selector must be given."""
    validate_selection(datastore_id, image_set_ids, import_job_id, all_image_sets)
    if image_set_ids:
        return from_ids(datastore_id, image_set_ids, label)
    if import_job_id is not None:
        return from_job(hi, datastore_id, import_job_id, label)
    return search_all(hi, datastore_id)


async def from_ids(datastore_id: str, image_set_ids: Sequence[str],
                   label: str | None = None) -> AsyncIterator[ImageSetRef]:
    check_id(datastore_id, "data store ID")
    for image_set_id in dict.fromkeys(image_set_ids):  # keep order, drop repeats
        yield ImageSetRef(datastore_id, check_id(image_set_id, "image set ID"), label)


async def search_all(hi: HealthImaging, datastore_id: str) -> AsyncIterator[ImageSetRef]:
    """Every image set of the data store."""
    check_id(datastore_id, "data store ID")
    async for image_set_id in hi.image_set_ids(datastore_id):
        yield ImageSetRef(datastore_id,
                          check_server_id(image_set_id, "image set ID from the service"))


def image_sets_in_manifest(manifest: dict[str, Any], datastore_id: str,
                           label: str | None = None) -> list[ImageSetRef]:
    """The image sets an import job's manifest lists, each once."""
    summary = manifest.get("jobSummary") or {}
    refs = []
    for item in summary.get("imageSetsSummary") or []:
        image_set_id = check_server_id(item.get("imageSetId"), "image set ID from the manifest")
        refs.append(ImageSetRef(datastore_id, image_set_id, label))
    return list(dict.fromkeys(refs))


async def from_job(hi: HealthImaging, datastore_id: str, job_id: str,
                   label: str | None = None) -> AsyncIterator[ImageSetRef]:
    """The image sets a COMPLETED import job produced (from its output manifest)."""
    check_id(datastore_id, "data store ID")
    check_job_id(job_id)
    output = await hi.completed_job_output(datastore_id, job_id)
    manifest = await hi.job_manifest(output, give_up_after=MANIFEST_WAIT_SECONDS)
    for ref in image_sets_in_manifest(manifest, datastore_id, label):
        yield ref
