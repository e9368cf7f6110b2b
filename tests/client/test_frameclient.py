"""The lean GetImageFrame path: botocore's exact signature, and the same answers and errors."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from hi_async.api import Downloader
from hi_async.aws.credentials import CredentialSource
from hi_async.aws.dataplane import LeanDataPlane, data_plane_url, identity_body
from hi_async.aws.errors import ApiError, BodyError
from hi_async.aws.sigv4 import JsonPostSigner, canonical_host
from hi_async.errors import CredentialsError
from hi_async.local.stack import LocalStack
from hi_async.settings import Settings
from tests.client.helpers import crc
from tests.local.helpers import seed_image_set

PATH = ("/datastore/0123456789abcdef0123456789abcdef"
        "/imageSet/fedcba9876543210fedcba9876543210/getImageFrame")
BODY = b'{"imageFrameId": "00112233445566778899aabbccddeeff"}'


def _botocore_headers(url: str, token: str | None, stamp: str) -> dict[str, str]:
    """botocore's SigV4Auth on the same request, with its clock pinned to ``stamp``."""
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    request = AWSRequest(method="POST", url=url, data=BODY,
                         headers={"Content-Type": "application/json"})
    auth = SigV4Auth(creds.get_frozen_credentials(), "medical-imaging", "eu-west-1")
    request.context["timestamp"] = stamp
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    auth._inject_signature_to_request(request, signature)
    return {k: v for k, v in request.headers.items() if k != "Content-Type"}


@pytest.mark.parametrize("base", ["http://127.0.0.1:4566", "https://runtime-medical-imaging"
                                  ".eu-west-1.amazonaws.com", "http://localhost:80"])
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLETOKEN=="])
def test_signature_equals_botocores(base: str, token: str | None) -> None:
    now = 1_764_158_400.0  # 2025-11-26T12:00:00Z
    ours = JsonPostSigner(base, "medical-imaging", "eu-west-1").headers(
        PATH, BODY, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token, now=now)
    theirs = _botocore_headers(base + PATH, token, "20251126T120000Z")
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"] == "20251126T120000Z"
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")


def test_canonical_host_drops_default_ports_only() -> None:
    assert canonical_host("http://localhost:80") == "localhost"
    assert canonical_host("https://h.example:443") == "h.example"
    assert canonical_host("http://127.0.0.1:4566") == "127.0.0.1:4566"


def test_data_plane_url_adds_the_runtime_prefix_on_aws_only() -> None:
    aws = "https://medical-imaging.us-east-1.amazonaws.com"
    assert data_plane_url(aws, custom=False) == "https://runtime-medical-imaging.us-east-1.amazonaws.com"
    assert data_plane_url("http://127.0.0.1:4566/", custom=True) == "http://127.0.0.1:4566"


def test_error_answers_are_read_by_botocores_rules() -> None:
    err = ApiError.from_answer(429, {"x-amzn-ErrorType": "ThrottlingException:http://x"},
                               b'{"message": "slow down"}')
    assert (err.code, err.message, err.status) == ("ThrottlingException", "slow down", 429)
    err = ApiError.from_answer(404, {}, b'{"__type": "com.amazon#ResourceNotFoundException",'
                                        b' "message": "no such frame"}')
    assert err.code == "ResourceNotFoundException"
    assert ApiError.from_answer(503, {}, b"<html>").code == "503"


@pytest.fixture(scope="module")
def signed_stack() -> Any:
    with LocalStack(verify_signatures=True, credentials={"AKIDLEAN": "lean-secret"}) as stack:
        yield stack


async def test_lean_path_is_accepted_by_a_signature_checking_server(signed_stack: Any,
                                                                    tmp_path: Any) -> None:
    backend = signed_stack.backend("123456789012", "us-east-1")
    seeded = seed_image_set(backend, instances=3)
    settings = Settings(endpoint_url=signed_stack.url, region="us-east-1", fetchers=4,
                        decoders=1, pool="thread", access_key_id="AKIDLEAN",
                        secret_access_key="lean-secret")
    async with LeanDataPlane(settings, signed_stack.url, "us-east-1",
                             CredentialSource(settings), 4) as frames:
        data, content_type = await frames.get_frame(seeded.datastore_id, seeded.image_set_id,
                                                    seeded.frame_ids[0])
    assert data == seeded.frames[0].data
    assert content_type == seeded.frames[0].content_type
    async with Downloader(settings) as dl:
        summary = await dl.download(seeded.datastore_id, image_set_ids=[seeded.image_set_id],
                                    out_dir=tmp_path / "out")
    assert (summary.frames, summary.verified) == (3, 3)


async def test_lean_path_reports_a_wrong_secret_as_a_credentials_error(signed_stack: Any,
                                                                       tmp_path: Any) -> None:
    settings = Settings(endpoint_url=signed_stack.url, region="us-east-1", pool="thread",
                        access_key_id="AKIDLEAN", secret_access_key="not-the-secret")
    async with LeanDataPlane(settings, signed_stack.url, "us-east-1",
                             CredentialSource(settings), 2) as frames:
        with pytest.raises(ApiError) as exc:
            await frames.get_frame("0" * 32, "1" * 32, "2" * 32)
    assert exc.value.code == "InvalidSignatureException"
    from hi_async import aws

    err = aws.translate(exc.value, "get a frame", settings)
    assert isinstance(err, CredentialsError)
    assert "not-the-secret" not in str(err)


def test_frame_bytes_round_trip_through_the_sdk_and_lean_paths_alike(
        local_stack: Any, backend: Any, settings: Settings, tmp_path: Any) -> None:
    seeded = seed_image_set(backend, instances=2)
    import numpy as np

    from hi_async.api import download

    checksums = {}
    for kind in ("lean", "sdk"):
        out = tmp_path / kind
        summary = download(seeded.datastore_id, image_set_ids=[seeded.image_set_id],
                           out_dir=out, settings=settings.replace(frame_client=kind,
                                                                  output_format="npy"))
        assert summary.verified == 2, kind
        checksums[kind] = sorted(crc(np.load(p)) for p in out.glob("*/*.npy"))
    assert len(checksums["lean"]) == 2
    assert checksums["lean"] == checksums["sdk"]


def test_a_compressed_answer_is_inflated_and_an_unknown_encoding_refused() -> None:
    import gzip
    import zlib

    body = bytes(range(256)) * 10
    assert identity_body(body, None) == body
    assert identity_body(body, "identity") == body
    assert identity_body(gzip.compress(body), "gzip") == body
    assert identity_body(zlib.compress(body), "deflate") == body
    with pytest.raises(BodyError):
        identity_body(body, "br")
