"""Control routes and every realism/fault knob, observed from real clients."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ResponseStreamingError,
)

from .helpers import seed_image_set

BROKEN_BODY = (IncompleteReadError, ResponseStreamingError, ConnectionClosedError)


@pytest.fixture
def knobs(local_stack):
    """Set knobs for one test; everything back off afterwards."""
    yield local_stack.set_faults
    local_stack.set_faults(latency_ms=0, jitter_ms=0, bandwidth_mbps=0, throttle_rps=0,
                           error_rate=0, drop_rate=0, truncate_rate=0, corrupt_rate=0,
                           drip_rate=0, fault_seed=None)


@pytest.fixture
def frame_call(mi, backend):
    seeded = seed_image_set(backend, instances=1)

    def call():
        out = mi.get_image_frame(datastoreId=seeded.datastore_id, imageSetId=seeded.image_set_id,
                                 imageFrameInformation={"imageFrameId": seeded.frame_ids[0]})
        return out["imageFrameBlob"].read()
    call.expected = seeded.frames[0].data
    return call


def test_stats_count_requests_per_operation_and_status(local_stack, mi):
    before = local_stack.stats()["requests"].get("GetDatastore", {})
    with pytest.raises(ClientError):
        mi.get_datastore(datastoreId="0" * 32)
    after = local_stack.stats()["requests"]["GetDatastore"]
    assert after.get("404", 0) == before.get("404", 0) + 1


def test_faults_route_rejects_unknown_knobs(endpoint_url):
    req = urllib.request.Request(f"{endpoint_url}/_hi_async/faults", method="POST",
                                 data=json.dumps({"no_such_knob": 1}).encode())
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 400
    assert "no_such_knob" in json.loads(e.value.read())["message"]


def test_throttle_answers_429_throttling_exception(knobs, frame_call, local_stack):
    knobs(throttle_rps=0.5)
    with pytest.raises(ClientError) as e:
        for _ in range(3):
            frame_call()
    assert e.value.response["Error"]["Code"] == "ThrottlingException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert local_stack.stats()["faults"]["throttle"] >= 1


def test_error_rate_answers_5xx(knobs, frame_call, local_stack):
    knobs(error_rate=1.0, fault_seed=7)
    with pytest.raises(ClientError) as e:
        frame_call()
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503)
    assert e.value.response["Error"]["Code"] in ("InternalServerException",
                                                 "ServiceUnavailableException")
    assert local_stack.stats()["faults"]["error"] >= 1


def test_truncated_body_is_short_of_its_length(knobs, frame_call, local_stack):
    knobs(truncate_rate=1.0)
    with pytest.raises(BROKEN_BODY):
        frame_call()
    assert local_stack.stats()["faults"]["truncate"] >= 1


def test_dropped_connection_breaks_the_answer(knobs, frame_call, local_stack):
    knobs(drop_rate=1.0)
    with pytest.raises(BROKEN_BODY):
        frame_call()
    assert local_stack.stats()["faults"]["drop"] >= 1


def test_corrupt_body_has_flipped_bytes(knobs, frame_call, local_stack):
    knobs(corrupt_rate=1.0)
    data = frame_call()
    assert len(data) == len(frame_call.expected) and data != frame_call.expected
    assert local_stack.stats()["faults"]["corrupt"] >= 1


def test_latency_and_bandwidth_keep_bodies_intact(knobs, frame_call, local_stack):
    applied = knobs(latency_ms=5, jitter_ms=5, bandwidth_mbps=50)
    assert (applied["latency_ms"], applied["bandwidth_mbps"]) == (5.0, 50.0)
    assert frame_call() == frame_call.expected


def test_faults_are_reproducible_with_a_seed(knobs, frame_call):
    def pattern():
        out = []
        for _ in range(12):
            try:
                frame_call()
                out.append("ok")
            except ClientError:
                out.append("error")
        return out
    knobs(error_rate=0.5, fault_seed=1234)
    first = pattern()
    knobs(error_rate=0.5, fault_seed=1234)
    assert pattern() == first and set(first) == {"ok", "error"}


def test_control_plane_is_never_faulted(knobs, mi):
    knobs(error_rate=1.0, drop_rate=0.0)
    assert "datastoreSummaries" in mi.list_datastores(maxResults=1)
