"""``hi_async.ray.read_frames``: a lazy, streaming Ray Dataset of verified frames.

    ds = hi_async.ray.read_frames(datastore_id, image_set_ids=[...])
    ds.map_batches(normalise).iter_torch_batches(batch_size=32)

Calling it resolves only which image sets are meant (a few control-plane calls, so that a
wrong data store, job or ID is one clear error now, not a failed task later) and the
credentials; nothing is fetched until the Dataset is consumed. Then, in Ray tasks: each
image set's metadata becomes one row per frame (:func:`~hi_async.ray.rows.frame_refs`),
the rows are cut into blocks of ``frames_per_block`` (a streaming repartition, so that
one large image set is spread over the cluster), and each block's frames are fetched,
decoded and verified in lanes (:func:`~hi_async.ray.rows.fetch_frames`). Ray Data streams
with backpressure: frames are fetched as fast as the consumer takes them.

Every task shares the cluster's one send rate (:mod:`hi_async.ray.rate`) for as long as
the Dataset exists, and gets the region, endpoint and static credentials resolved here,
in its arguments (in memory; nothing is written).
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Sequence
from typing import Any, Literal

from ..aws.healthimaging import HealthImaging
from ..aws.session import AwsSession
from ..errors import NotFound, UsageError
from ..image_sets import select, validate_selection
from ..settings import Settings
from .access import Access
from .connect import require_ray
from .rate import start_broker
from .rows import RowJob, fetch_frames, frame_refs

OnFailure = Literal["raise", "row"]


async def _image_sets(settings: Settings, datastore_id: str,
                      image_set_ids: Sequence[str] | None, import_job_id: str | None,
                      all_image_sets: bool) -> list[str]:
    async with AwsSession(settings) as aws, HealthImaging(aws) as hi:
        if image_set_ids and await hi.datastore_status(datastore_id) is None:
            raise NotFound(f"data store {datastore_id} not found in region {settings.region}",
                           hint="check the ID and that the region is the data store's")
        source = select(hi, datastore_id, image_set_ids=image_set_ids,
                        import_job_id=import_job_id, all_image_sets=all_image_sets)
        return [ref.image_set_id async for ref in source]


def _resolve(settings: Settings, *args: Any) -> tuple[Access, list[str]]:
    """Credentials and the image sets, on an event loop of their own (the caller may be
    inside one, a notebook's say)."""
    import anyio

    def work() -> tuple[Access, list[str]]:
        access = Access.resolve(settings)
        ids = anyio.run(functools.partial(_image_sets, access.settings, *args))
        return access, ids

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


def read_frames(datastore_id: str, *, image_set_ids: Sequence[str] | None = None,
                import_job_id: str | None = None, all_image_sets: bool = False,
                endpoint_url: str | None = None, region: str | None = None,
                profile: str | None = None, settings: Settings | None = None,
                on_failure: OnFailure = "raise", pixels_dtype: str | None = None,
                frames_per_block: int = 128, lanes: int = 8, decoders: int = 1) -> Any:
    """A ``ray.data.Dataset`` of the verified frames of the selected image sets.

    Columns: ``image_set_id``, ``image_frame_id``, ``study_instance_uid``,
    ``series_instance_uid``, ``sop_instance_uid``, ``frame_number`` (1-based in its
    instance), ``pixels`` (the decoded array in its stored dtype and shape, or
    ``pixels_dtype``) and ``crc32`` (of the pixels, equal to the metadata's checksum; -1
    for a frame whose metadata has none, which is kept, unverifiable, as
    ``Downloader.frames`` keeps it). A frame that fails after its retries raises
    FrameFailed when the Dataset is consumed; with ``on_failure="row"`` it is a row with
    empty pixels and an ``error`` column saying why (None on every other row).

    Exactly one of ``image_set_ids``, ``import_job_id`` and ``all_image_sets`` selects
    the image sets. AWS access is configured as for a download: the standard chain,
    ``profile``, ``region``, ``endpoint_url`` (or ``settings``). Uses the Ray connection
    of this process (``ray.init(...)`` first to pick a cluster; Ray Data starts a local
    one otherwise). ``frames_per_block`` frames are fetched by one task with ``lanes``
    requests in flight and ``decoders`` decode threads.
    """
    ray = require_ray()
    if on_failure not in ("raise", "row"):
        raise UsageError(f"on_failure must be 'raise' or 'row', not {on_failure!r}")
    for name, value in (("frames_per_block", frames_per_block), ("lanes", lanes),
                        ("decoders", decoders)):
        if value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    validate_selection(datastore_id, image_set_ids, import_job_id, all_image_sets)
    settings = (settings or Settings.from_env()).replace(
        **{k: v for k, v in (("endpoint_url", endpoint_url), ("region", region),
                             ("profile", profile)) if v is not None})
    access, ids = _resolve(settings, datastore_id, image_set_ids, import_job_id,
                           all_image_sets)
    broker = start_broker(ray)
    job = RowJob(access, broker, lanes=lanes, decoders=decoders, on_failure=on_failure,
                 pixels_dtype=pixels_dtype)
    sets = ray.data.from_items([{"datastore_id": datastore_id, "image_set_id": i}
                                for i in ids], override_num_blocks=max(1, len(ids)))
    # Metadata tasks hold half a CPU (a request and a JSON parse). Asking a different
    # amount than the frame tasks also keeps Ray Data from fusing the two steps into one
    # task per image set, which would leave a large image set on one node.
    return (sets.map_batches(functools.partial(frame_refs, job=job), batch_size=1,
                             batch_format="numpy", num_cpus=0.5)
            .repartition(target_num_rows_per_block=frames_per_block)
            .map_batches(functools.partial(fetch_frames, job=job), batch_size=None,
                         batch_format="numpy"))
