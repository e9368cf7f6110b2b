"""The workflow's own clients (as a run uses them) against the session stack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hi_async.settings import Settings
from hi_async.workflow.clients import Clients
from hi_async.workflow.session import target_settings


@pytest.fixture
async def clients(endpoint_url: str) -> AsyncIterator[Clients]:
    target = target_settings(Settings(), region="us-east-1", endpoint_url=endpoint_url,
                             profile=None)
    async with Clients(target) as c:
        yield c
