"""Shared fixtures: one local stack per test session, and clients pointed at it.

The stack runs in thread mode on a free loopback port, so both synchronous boto3 tests
and aioboto3 tests in pytest's session loop can use it, and tests can seed image sets
straight into its backend (``tests/local/helpers.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aioboto3
import boto3
import pytest
from botocore.config import Config

from hi_async.local.stack import LocalStack

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def client_config(service: str, attempts: int = 1) -> Config:
    """Retries off by default so tests see each answer; no host prefix for HealthImaging."""
    return Config(inject_host_prefix=service != "medical-imaging",
                  retries={"mode": "standard", "total_max_attempts": attempts},
                  connect_timeout=5, read_timeout=60)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    stack = LocalStack(datastore_delay=0.2)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def endpoint_url(local_stack: LocalStack) -> str:
    return local_stack.url


@pytest.fixture(scope="session")
def make_client(endpoint_url: str) -> Callable[..., Any]:
    """``make_client("s3")``: a boto3 client for the local stack."""
    def make(service: str, *, attempts: int = 1, url: str | None = None, **kw: Any) -> Any:
        args = {**KEYS, **kw}
        return boto3.client(service, endpoint_url=url or endpoint_url, region_name=REGION,
                            config=client_config(service, attempts), **args)
    return make


@pytest.fixture(scope="session")
def mi(make_client: Callable[..., Any]) -> Any:
    return make_client("medical-imaging")


@pytest.fixture(scope="session")
def s3(make_client: Callable[..., Any]) -> Any:
    return make_client("s3")


@pytest.fixture
async def aio_mi(endpoint_url: str) -> AsyncIterator[Any]:
    session = aioboto3.Session(region_name=REGION, **KEYS)
    async with session.client("medical-imaging", endpoint_url=endpoint_url,
                              config=client_config("medical-imaging")) as client:
        yield client


@pytest.fixture
async def aio_s3(endpoint_url: str) -> AsyncIterator[Any]:
    session = aioboto3.Session(region_name=REGION, **KEYS)
    async with session.client("s3", endpoint_url=endpoint_url,
                              config=client_config("s3")) as client:
        yield client


@pytest.fixture
def backend(local_stack: LocalStack) -> Any:
    """The emulator backend of the session stack (us-east-1), for seeding."""
    return local_stack.backend()
