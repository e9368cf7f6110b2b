"""With ``--verify-signatures`` the control routes need the control token or a signature.

Unsigned ``POST /_hi_async/reset`` used to wipe a stack that checked every other request's
signature; now every control route but the health check refuses a caller the stack does
not trust, with 403 in a JSON error, and changes nothing.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict

from hi_async.local.config import StackConfig
from hi_async.local.healthimaging.apierrors import InvalidSignatureException
from hi_async.local.serve import URL_LINE_PREFIX
from hi_async.local.stack import LocalStack

KEY, SECRET = "AKIDCONTROL", "control-secret/+="
READER = "AKIDREADER"
CONTROL_TOKEN_ENV = "HI_ASYNC_LOCAL_CONTROL_TOKEN"
#: (method, route, body) of every control route that needs credentials.
GUARDED = [("GET", "stats", None), ("GET", "faults", None),
           ("POST", "faults", {"latency_ms": 5}), ("POST", "reset", {})]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(verify_signatures=True, credentials={KEY: SECRET, READER: SECRET},
                    denied={READER: frozenset({"DeleteDatastore"})}) as s:
        yield s


def _call(url: str, method: str, route: str, body: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{url}/_hi_async/{route}", data=data, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, json.loads(answer.read()), answer.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def _signed(url: str, method: str, route: str, body: dict[str, Any] | None = None, *,
            key: str = KEY, secret: str = SECRET,
            service: str = "hi_async") -> dict[str, str]:
    """Headers of a SigV4-signed request, as botocore signs any AWS request."""
    request = AWSRequest(method=method, url=f"{url}/_hi_async/{route}",
                         data=b"" if body is None else json.dumps(body).encode())
    SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(request)
    return dict(request.headers.items())


def _state(stack: LocalStack) -> tuple[int, float]:
    """Data stores in the backend and the latency knob: what a reset or faults would change."""
    datastores = len(stack.backend().list_datastores())
    return datastores, stack.server.realism.knobs.latency_ms if stack.server else -1.0


@pytest.mark.parametrize(("method", "route", "body"), GUARDED,
                         ids=[f"{m} {r}" for m, r, _ in GUARDED])
def test_an_unsigned_control_request_is_refused_and_changes_nothing(
        stack: LocalStack, make_client: Any, method: str, route: str,
        body: dict[str, Any] | None) -> None:
    mi = make_client("medical-imaging", url=stack.url, aws_access_key_id=KEY,
                     aws_secret_access_key=SECRET)
    mi.create_datastore(datastoreName=f"survives-{route}")
    before = _state(stack)
    status, error, headers = _call(stack.url, method, route, body)
    assert status == 403
    assert error["__type"] == headers["x-amzn-ErrorType"] == \
        "MissingAuthenticationTokenException"
    assert "Bearer <control token>" in error["message"]
    assert "SigV4" in error["message"]
    assert _state(stack) == before


def test_an_unknown_route_is_refused_before_it_is_looked_up(stack: LocalStack) -> None:
    status, error, _ = _call(stack.url, "GET", "no-such-route")
    assert status == 403 and error["__type"] == "MissingAuthenticationTokenException"


def test_the_health_check_stays_open_and_tells_a_stranger_only_readiness(
        stack: LocalStack) -> None:
    status, answer, _ = _call(stack.url, "GET", "health")
    assert (status, answer) == (200, {"ready": True})
    token = {"Authorization": f"Bearer {stack.control_token}"}
    status, answer, _ = _call(stack.url, "GET", "health", headers=token)
    assert status == 200 and answer["publicData"] == "ready"


def test_a_wrong_control_token_is_refused(stack: LocalStack) -> None:
    status, error, _ = _call(stack.url, "POST", "reset", {},
                             {"Authorization": "Bearer not-the-token"})
    assert status == 403 and error["__type"] == "AccessDeniedException"
    assert "control token" in error["message"]
    assert stack.control_token is not None and stack.control_token not in error["message"]


def test_the_stack_helpers_send_the_control_token(stack: LocalStack,
                                                  make_client: Any) -> None:
    mi = make_client("medical-imaging", url=stack.url, aws_access_key_id=KEY,
                     aws_secret_access_key=SECRET)
    ds = mi.create_datastore(datastoreName="helpers")["datastoreId"]
    try:
        assert stack.set_faults(latency_ms=1)["latency_ms"] == 1
        assert stack.stats()["knobs"]["latency_ms"] == 1
        assert "CreateDatastore" in stack.stats()["requests"]
    finally:
        stack.set_faults(latency_ms=0)
    refused = stack.stats()["requests"]["control:refused"]["403"]
    assert refused >= 1  # the refusals of the tests above are counted
    assert stack.control("reset") == {"reset": True}
    assert all(d.datastore_id != ds for d in stack.backend().list_datastores())


@pytest.mark.parametrize(("method", "route", "body"), GUARDED,
                         ids=[f"{m} {r}" for m, r, _ in GUARDED])
def test_a_request_signed_with_a_configured_key_is_accepted(
        stack: LocalStack, method: str, route: str, body: dict[str, Any] | None) -> None:
    status, answer, _ = _call(stack.url, method, route, body,
                              _signed(stack.url, method, route, body))
    assert status == 200, answer
    if route == "faults" and method == "POST":
        assert answer["latency_ms"] == 5
        stack.set_faults(latency_ms=0)


def test_any_service_name_in_the_scope_is_accepted(stack: LocalStack) -> None:
    for service in ("medical-imaging", "s3", "execute-api"):
        headers = _signed(stack.url, "GET", "stats", service=service)
        assert _call(stack.url, "GET", "stats", headers=headers)[0] == 200


def test_a_wrong_secret_or_an_unknown_key_is_refused(stack: LocalStack) -> None:
    wrong = _signed(stack.url, "POST", "reset", {}, secret="not-the-secret")
    status, error, _ = _call(stack.url, "POST", "reset", {}, wrong)
    assert status == 403 and error["__type"] == "InvalidSignatureException"
    stranger = _signed(stack.url, "POST", "reset", {}, key="AKIDSTRANGER")
    status, error, _ = _call(stack.url, "POST", "reset", {}, stranger)
    assert status == 403 and error["__type"] == "UnrecognizedClientException"


def test_a_signature_for_another_body_is_refused(stack: LocalStack) -> None:
    headers = _signed(stack.url, "POST", "faults", {"latency_ms": 0})
    status, error, _ = _call(stack.url, "POST", "faults", {"error_rate": 1.0}, headers)
    assert status == 403 and error["__type"] == "InvalidSignatureException"
    assert stack.server is not None and stack.server.realism.knobs.error_rate == 0


def test_a_restricted_key_may_read_but_not_change_the_stack(stack: LocalStack) -> None:
    read = _signed(stack.url, "GET", "stats", key=READER)
    assert _call(stack.url, "GET", "stats", headers=read)[0] == 200
    change = _signed(stack.url, "POST", "faults", {"latency_ms": 9}, key=READER)
    status, error, _ = _call(stack.url, "POST", "faults", {"latency_ms": 9}, change)
    assert status == 403 and error["__type"] == "AccessDeniedException"
    assert f"user/{READER} is not authorized" in error["message"]
    assert stack.server is not None and stack.server.realism.knobs.latency_ms == 0


def test_a_signed_request_is_good_for_15_minutes_either_way() -> None:
    from hi_async.local.control_access import check_control_access

    config = StackConfig(verify_signatures=True, credentials={KEY: SECRET})
    url = "http://127.0.0.1:4566"
    headers = CIMultiDict(_signed(url, "POST", "reset", {}))
    headers["Host"] = "127.0.0.1:4566"  # botocore signs it; an HTTP client sends it
    signed_at = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    for offset in (timedelta(minutes=-14), timedelta(minutes=14)):
        assert check_control_access("POST", "/_hi_async/reset", headers, b"{}", config,
                                    now=signed_at + offset) == KEY
    with pytest.raises(InvalidSignatureException, match="Signature expired"):
        check_control_access("POST", "/_hi_async/reset", headers, b"{}", config,
                             now=signed_at + timedelta(minutes=16))
    with pytest.raises(InvalidSignatureException, match="not yet current"):
        check_control_access("POST", "/_hi_async/reset", headers, b"{}", config,
                             now=signed_at - timedelta(minutes=16))


def test_without_signatures_the_control_routes_stay_open(endpoint_url: str) -> None:
    # The session's stack: loopback, no --verify-signatures.
    status, answer, _ = _call(endpoint_url, "GET", "stats")
    assert status == 200 and "requests" in answer
    status, answer, _ = _call(endpoint_url, "GET", "health")
    assert status == 200 and answer["publicData"] == "ready"


def test_a_process_stack_hands_its_token_to_the_child(make_client: Any) -> None:
    with LocalStack(mode="process", verify_signatures=True,
                    credentials={KEY: SECRET}) as stack:
        assert _call(stack.url, "POST", "reset", {})[0] == 403
        assert stack.set_faults(latency_ms=2)["latency_ms"] == 2
        assert stack.stats()["knobs"]["latency_ms"] == 2
        assert stack.control("reset") == {"reset": True}


def test_local_serve_on_all_interfaces_writes_a_private_token_and_keeps_its_first_line(
        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != CONTROL_TOKEN_ENV}
    env["HI_ASYNC_LOCAL_CREDENTIALS"] = f"{KEY}:{SECRET}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hi_async", "local", "serve", "--host", "0.0.0.0", "--port",
         "0", "--data-dir", str(tmp_path), "--verify-signatures"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(URL_LINE_PREFIX)
        url = first[len(URL_LINE_PREFIX):].strip()
        token_file = tmp_path / "control-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text()
        assert len(token) >= 32
        # The case: unsigned reset and faults on a stack bound to 0.0.0.0.
        assert _call(url, "POST", "reset", {})[0] == 403
        assert _call(url, "POST", "faults", {"error_rate": 1})[0] == 403
        status, answer, _ = _call(url, "GET", "stats",
                                  headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and answer["knobs"]["error_rate"] == 0
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert str(token_file) in err and token not in err
