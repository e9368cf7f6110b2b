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
    from hi_async.model import EncodedFrame, FrameRef
    from hi_async.verify import verify_frame

    if sys.argv[1] == "pool":
        from hi_async.decodepool import DecodePool
        DecodePool("thread", 1)  # what a download sets up before decoding
    pixels = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 7) % 4096
    good = imagecodecs.htj2k_encode(pixels)
    rng = random.Random(1)
    ref = FrameRef("0" * 32, "1" * 32, "2" * 32, "1.2", "1.2.3", "1.2.3.4", 1, 64, 64, 1,
                   16, 16, False, "1.2.840.10008.1.2.4.202", 0)
    statuses = []
    for _ in range(100):
        damaged = bytearray(good)
        for _ in range(3):
            damaged[rng.randrange(len(damaged))] ^= 0xFF
        frame = EncodedFrame(ref, bytes(damaged), "image/jph")
        statuses.append(verify_frame(frame, path=None, fmt="none").check.value)
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


_UNVERIFIABLE = textwrap.dedent("""
    import sys
    import numpy as np
    import imagecodecs
    from hi_async import codecs
    from hi_async.decodepool import DecodePool
    from hi_async.errors import DecodeError
    from hi_async.model import EncodedFrame, FrameRef
    from hi_async.verify import verify_frame

    DecodePool("thread", 1)
    pixels = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 7) % 4096
    damaged = bytearray(imagecodecs.htj2k_encode(pixels))
    damaged[len(damaged) // 2:] = b"\\xff" * (len(damaged) - len(damaged) // 2)
    # No checksum to compare with: only the decoder's own report can tell.
    ref = FrameRef("0" * 32, "1" * 32, "2" * 32, "1.2", "1.2.3", "1.2.3.4", 1, 64, 64, 1,
                   16, 16, False, "1.2.840.10008.1.2.4.202", None)
    checks = [verify_frame(EncodedFrame(ref, bytes(damaged), "image/jph"), path=None,
                           fmt="none").check.value for _ in range(3)]
    errors = []
    for scratch in (False, True):
        try:
            codecs.decode(bytes(damaged), "image/jph", 64, 64, 1, "<u2", scratch=scratch)
        except DecodeError as exc:
            errors.append(exc.message)
    good = codecs.decode(imagecodecs.htj2k_encode(pixels), "image/jph", 64, 64, 1, "<u2",
                         scratch=True)
    print(checks, len(errors), bool((good == pixels).all()))
""")


def test_a_decode_whose_error_the_codec_swallowed_is_a_failed_decode() -> None:
    """OpenJPH's error can reach only the interpreter's hooks, and the decode call then
    returns pixels: without a checksum to compare, they would be written as unverifiable.
    With the pool's hooks the decode fails, the frame is a mismatch (fetched again), and
    the next sound frame decodes as before."""
    done = subprocess.run([sys.executable, "-c", _UNVERIFIABLE], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['mismatch',", "'mismatch',", "'mismatch']", "2", "True"]
    assert done.stderr == ""
