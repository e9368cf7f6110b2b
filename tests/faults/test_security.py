"""Signatures, secrets and where files go: nobody let in, nothing leaked."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hi_async import Downloader
from hi_async.errors import CredentialsError, NotFound
from hi_async.local.stack import LocalStack
from hi_async.settings import Settings
from tests.local.helpers import seed_image_set

from .conftest import ACCESS_KEY, SECRET, SESSION_TOKEN, cli

WRONG_SECRET = "hiAsyncWrongSecret-Bb3Nn4Mm5Qq6"


@pytest.fixture(scope="module")
def signed_stack() -> Iterator[LocalStack]:
    """A stack that checks SigV4 signatures against one key with a distinctive secret."""
    with LocalStack(verify_signatures=True, credentials={ACCESS_KEY: SECRET}) as stack:
        yield stack


def _env(secret: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_SESSION_TOKEN": SESSION_TOKEN, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true"}


def _every_output(done: Any, root: Path) -> list[str]:
    texts = [done.stdout, done.stderr]
    texts += [p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file()]
    return texts


def _no_secret(texts: list[str]) -> None:
    for text in texts:
        for needle in (SECRET, WRONG_SECRET, SESSION_TOKEN, "Signature=", "Authorization",
                       "X-Amz-Security-Token"):
            assert needle not in text


def test_no_secret_in_any_output_of_a_good_and_a_refused_download(
        signed_stack: LocalStack, tmp_path: Path) -> None:
    seeded = seed_image_set(signed_stack.backend(), instances=3)
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir()
    args = ["download", "--endpoint-url", signed_stack.url, "--datastore-id",
            seeded.datastore_id, "--image-set-id", seeded.image_set_id, "--out", str(out)]
    good = cli(args, _env(SECRET), cwd=cwd)
    assert good.returncode == 0, good.stderr
    refused = cli(args, _env(WRONG_SECRET), cwd=cwd)
    assert refused.returncode == 2
    assert "refused the credentials" in refused.stderr and "Traceback" not in refused.stderr
    debug = cli(["--debug", *args], _env(WRONG_SECRET), cwd=cwd)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    # Nothing verified was lost to the refused runs, and nothing was written elsewhere.
    assert len(list(out.glob("*/*.jph"))) == 3
    assert (out / "index.jsonl").read_text().count('"status":"verified"') == 3
    assert not list(cwd.iterdir())
    assert {p.name for p in tmp_path.iterdir()} == {"out", "cwd"}
    _no_secret(_every_output(good, tmp_path) + _every_output(refused, tmp_path)
               + [debug.stdout, debug.stderr])


async def test_explicit_credentials_sign_requests_without_the_environment(
        signed_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    seeded = seed_image_set(signed_stack.backend(), instances=2)
    settings = Settings(endpoint_url=signed_stack.url, region="us-east-1", pool="thread",
                        decoders=1, fetchers=4, access_key_id=ACCESS_KEY,
                        secret_access_key=SECRET)
    assert SECRET not in repr(settings)
    async with Downloader(settings) as dl:
        summary = await dl.download(seeded.datastore_id, image_set_ids=[seeded.image_set_id],
                                    out_dir=tmp_path / "out")
    assert summary.verified == 2
    wrong = settings.replace(secret_access_key=WRONG_SECRET)
    async with Downloader(wrong) as dl:
        with pytest.raises(CredentialsError) as err:
            await dl.download(seeded.datastore_id, image_set_ids=[seeded.image_set_id],
                              out_dir=tmp_path / "out2")
    assert WRONG_SECRET not in str(err.value) and SECRET not in str(err.value)


async def test_a_data_store_of_another_region_is_not_found_and_the_message_says_region(
        settings: Settings, backend: Any, tmp_path: Path) -> None:
    seeded = seed_image_set(backend, instances=1)  # created in us-east-1
    async with Downloader(settings.replace(region="us-west-2")) as dl:
        with pytest.raises(NotFound) as err:
            await dl.download(seeded.datastore_id, image_set_ids=[seeded.image_set_id],
                              out_dir=tmp_path)
    assert "us-west-2" in str(err.value) and "--region" in str(err.value)


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses (hex, as the kernel shows them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_local_stack_binds_loopback_by_default() -> None:
    with LocalStack(mode="process") as stack:
        assert stack.url.startswith("http://127.0.0.1:")
        port = int(stack.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        # Only 127.0.0.1 (little-endian hex 0100007F) listens; not 0.0.0.0 nor [::].
        assert _listening_addresses(port) == {"0100007F"}
