"""A corrupt HTJ2K frame is reported once, as the frame's failure, and never as stray
"RuntimeError: ojph error" lines that OpenJPH's error callback prints on stderr."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent("""
    import random, sys
    import numpy as np
    import imagecodecs
    from hi_async.stages.work import Job, run_job

    if sys.argv[1] == "pool":
        from hi_async.stages.decode import DecodePool
        DecodePool("thread", 1)  # what a download sets up before decoding
    pixels = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 7) % 4096
    good = imagecodecs.htj2k_encode(pixels)
    rng = random.Random(1)
    statuses = []
    for _ in range(100):
        damaged = bytearray(good)
        for _ in range(3):
            damaged[rng.randrange(len(damaged))] ^= 0xFF
        job = Job(bytes(damaged), "image/jph", 64, 64, 1, "<u2", 0, "none", None)
        statuses.append(run_job(job).status)
    print(statuses.count("mismatch"))
""")


@pytest.mark.parametrize("setup", ["pool", "bare"])
def test_corrupt_frames_are_mismatches_without_stray_codec_errors(setup: str) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, setup], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == 100  # every damaged frame is a mismatch, to be re-fetched
    if setup == "pool":
        assert "ojph" not in done.stderr and done.stderr == ""
    else:
        # Without the pool's hooks the codec does print: what the hooks are there for.
        assert "RuntimeError: ojph error" in done.stderr
