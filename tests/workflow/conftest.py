"""The workflow's own clients (retries on, as a run uses them) against the session stack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hi_async.workflow.clients import Clients, Endpoint


@pytest.fixture
async def clients(endpoint_url: str) -> AsyncIterator[Clients]:
    async with Clients(Endpoint("us-east-1", endpoint_url)) as c:
        yield c
