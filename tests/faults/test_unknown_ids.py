"""Well-formed IDs that name nothing: a clear "not found" for each, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hi_async.errors import NotFound
from tests.local.helpers import seed_image_set

from .conftest import cli

UNKNOWN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("which", ["datastore", "image set", "import job"])
def test_an_unknown_id_is_not_found_with_advice(endpoint_url: str, aws_env: dict[str, str],
                                                backend: Any, tmp_path: Path,
                                                which: str) -> None:
    seeded = seed_image_set(backend, instances=1)
    select = {"datastore": ["--datastore-id", UNKNOWN, "--all"],
              "image set": ["--datastore-id", seeded.datastore_id, "--image-set-id", UNKNOWN],
              "import job": ["--datastore-id", seeded.datastore_id, "--import-job-id", UNKNOWN]}
    out = tmp_path / "out"
    done = cli(["download", "--endpoint-url", endpoint_url, *select[which], "--out", str(out),
                "--quiet"], aws_env)
    assert done.returncode == NotFound.exit_code != 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "not found" in done.stderr and UNKNOWN in done.stderr
    assert "check the ID" in done.stderr  # what to do
    assert not list(out.glob("*/*"))  # no frame file for anything
