"""Bad data from the server: metadata, content types and IDs that must not be trusted.

Each case seeds a broken image set through the emulator's backend next to a good one
that was downloaded first, then checks the message and that nothing verified was lost
and nothing was written outside the output folder.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from hi_async.local.healthimaging.records import EncodedFrame
from tests.local.helpers import Seeded, instance, seed_image_set

from .conftest import cli


def _download(seeded: Seeded, image_set_id: str, out: Path, endpoint: str,
              env: dict[str, str]) -> Any:
    return cli(["download", "--endpoint-url", endpoint, "--datastore-id", seeded.datastore_id,
                "--image-set-id", image_set_id, "--out", str(out), "--pool", "thread"], env)


def _verified(out: Path) -> int:
    return (out / "index.jsonl").read_text().count('"status":"verified"')


def _with_metadata(backend: Any, seeded: Seeded, blob: bytes) -> None:
    backend.store.put_metadata(seeded.image_set_id, 1, blob)


def _doc(backend: Any, seeded: Seeded) -> dict[str, Any]:
    return backend.metadata_doc(seeded.datastore_id, seeded.image_set_id)


def _frame_ids_replaced(doc: dict[str, Any], new_id: str) -> dict[str, Any]:
    for series in doc["Study"]["Series"].values():
        for inst in series["Instances"].values():
            for frame in inst["ImageFrames"]:
                frame["ID"] = new_id
    return doc


@pytest.mark.parametrize("case, message", [
    ("not gzip", "not gzip-compressed JSON"),
    ("not JSON", "is not JSON"),
    ("missing fields", "lacks"),
    ("gzip bomb", "inflates past"),
    ("ID with ..", "is not valid"),
])
def test_bad_metadata_gets_a_clear_error_and_keeps_what_was_verified(
        endpoint_url: str, aws_env: dict[str, str], backend: Any, tmp_path: Path,
        case: str, message: str) -> None:
    good = seed_image_set(backend, instances=2)
    bad = seed_image_set(backend, good.datastore_id, instances=1)
    out = tmp_path / "out"
    assert _download(good, good.image_set_id, out, endpoint_url, aws_env).returncode == 0
    if case == "not gzip":
        blob = b"\x00\x01 this is not metadata"
    elif case == "not JSON":
        blob = gzip.compress(b"{not json")
    elif case == "missing fields":
        doc = _doc(backend, bad)
        del doc["Study"]["Series"]
        blob = gzip.compress(json.dumps(doc).encode())
    elif case == "gzip bomb":
        blob = gzip.compress(b"{" + b" " * (60 * 1024 * 1024) + b"}", compresslevel=9)
    else:
        doc = _frame_ids_replaced(_doc(backend, bad), "../../../escaped")
        blob = gzip.compress(json.dumps(doc).encode())
    _with_metadata(backend, bad, blob)
    done = _download(bad, bad.image_set_id, out, endpoint_url, aws_env)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert _verified(out) == 2 and len(list(out.glob("*/*.jph"))) == 2
    assert {p.name for p in tmp_path.iterdir()} == {"out"}
    assert not list(tmp_path.rglob("escaped*"))


def test_a_frame_of_unknown_content_type_fails_by_id(
        endpoint_url: str, aws_env: dict[str, str], backend: Any, tmp_path: Path) -> None:
    ds = backend.create_datastore("odd-type", ready=True).datastore_id
    item = instance("1.2.3.4.777", "1.2.3.4.777.1")
    odd = dataclasses.replace(item, frames=(EncodedFrame(
        item.frames[0].data, "image/x-unknown", item.frames[0].min_pixel_value,
        item.frames[0].max_pixel_value, item.frames[0].checksums),))
    image_set_id = backend.add_instances(ds, [odd], job_id=None)[0].image_set_id
    frame_id = next(iter(next(iter(
        backend.metadata_doc(ds, image_set_id)["Study"]["Series"].values()
    ))["Instances"].values()))["ImageFrames"][0]["ID"]
    done = cli(["download", "--endpoint-url", endpoint_url, "--datastore-id", ds,
                "--image-set-id", image_set_id, "--out", str(tmp_path), "--pool", "thread"],
               aws_env)
    assert done.returncode == 1 and frame_id in done.stderr
    assert "image/x-unknown" in done.stderr and "Traceback" not in done.stderr
    entry = json.loads((tmp_path / "index.jsonl").read_text())
    assert entry["status"] == "failed" and "image/x-unknown" in entry["error"]
    assert entry["path"] is None and not list(tmp_path.glob("*/*"))
