"""Fixtures of the fault, bad-input and security tests.

They share the session's local stack (``tests/conftest.py``); every test that turns a
fault knob on gets it switched off again, and seeds its own image sets so that counts
read from ``/_hi_async/stats`` are deltas this test caused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hi_async.settings import Settings
from tests.client.conftest import local_settings, set_aws_env

#: A secret distinctive enough that finding it anywhere in an output means a leak.
SECRET = "hiAsyncFaultsSecret-q7Zr2Vx9Lm4Kp8Wn"
ACCESS_KEY = "AKIAHIASYNCFAULTS01"
SESSION_TOKEN = "hiAsyncFaultsSessionToken-Tt5Yy6Uu7"

ALL_OFF: dict[str, Any] = {"latency_ms": 0.0, "jitter_ms": 0.0, "bandwidth_mbps": 0.0,
                           "throttle_rps": 0.0, "error_rate": 0.0, "drop_rate": 0.0,
                           "truncate_rate": 0.0, "corrupt_rate": 0.0, "drip_rate": 0.0,
                           "fault_seed": None}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The distinctive secret of the leak tests, through the standard AWS variables."""
    return set_aws_env(monkeypatch, ACCESS_KEY, SECRET)


@pytest.fixture
def settings(endpoint_url: str, aws_env: dict[str, str]) -> Settings:
    return local_settings(endpoint_url)


@pytest.fixture
def faults(local_stack: Any) -> Iterator[Any]:
    """Set fault knobs for one test; everything is switched off again afterwards."""
    yield local_stack.set_faults
    local_stack.set_faults(**ALL_OFF)


def frames_served(local_stack: Any) -> int:
    """GetImageFrame requests the stack has answered so far (any status)."""
    return sum(local_stack.stats()["requests"].get("GetImageFrame", {}).values())


def injected(local_stack: Any) -> dict[str, int]:
    return dict(local_stack.stats().get("faults", {}))


def cli(args: list[str], env: dict[str, str], *, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m hi_async <args>`` in a child process with ``env`` added."""
    return subprocess.run([sys.executable, "-m", "hi_async", *args],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def leftovers(root: Path) -> list[Path]:
    """Temporary files anywhere under ``root`` (a finished run must leave none)."""
    return list(root.rglob("*.tmp"))
