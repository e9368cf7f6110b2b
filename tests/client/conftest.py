"""Fixtures of the client's integration tests: credentials, settings, seeded image sets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hi_async.settings import Settings
from tests.local.helpers import Seeded, seed_image_set

SECRET = "hiasyncTestSecretNeverPrinted0042"


def set_aws_env(monkeypatch: pytest.MonkeyPatch, access_key: str,
                secret: str) -> dict[str, str]:
    """Credentials for the local stack through the standard AWS variables."""
    env = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def local_settings(endpoint_url: str) -> Settings:
    """Small pools and quick backoff, all in this process (tests of the worker processes
    ask for them): what the integration tests download with."""
    return Settings(endpoint_url=endpoint_url, region="us-east-1", workers=1, fetchers=8,
                    decoders=2, pool="thread", backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return set_aws_env(monkeypatch, "AKIAHIASYNCTEST", SECRET)


@pytest.fixture
def settings(endpoint_url: str, aws_env: dict[str, str]) -> Settings:
    return local_settings(endpoint_url)


@pytest.fixture
def seeded_sets(backend: Any) -> list[Seeded]:
    """Three image sets (5, 4 and 2x3 frames) in one fresh data store."""
    first = seed_image_set(backend, instances=5)
    second = seed_image_set(backend, first.datastore_id, instances=4)
    third = seed_image_set(backend, first.datastore_id, instances=2, frames=3)
    return [first, second, third]


@pytest.fixture
def faults(local_stack: Any) -> Iterator[Any]:
    """Set fault knobs for one test; they are switched off again afterwards."""
    yield local_stack.set_faults
    local_stack.set_faults(error_rate=0.0, drop_rate=0.0, truncate_rate=0.0,
                           corrupt_rate=0.0, drip_rate=0.0, throttle_rps=0.0,
                           latency_ms=0.0)
