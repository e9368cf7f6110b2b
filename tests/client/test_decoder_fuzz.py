"""Damaged JPEG 2000 / HTJ2K frames never crash or hang the decode step.

Each damaged frame goes through hi_async's decode in a forked child (so that a crash or
an endless loop in native code is observed, not suffered): the child must end on its own
within seconds, with the frame refused by the header check or failing to decode or
decoding to other pixels, all of which the pipeline turns into a re-fetch. The seed is
fixed, so a failure here is reproducible; without the header check, this set of frames
held one that hung OpenJPH and one that crashed it.
"""

from __future__ import annotations

import os
import random
import signal

import imagecodecs
import numpy as np
import pytest

from hi_async import codecs
from hi_async.errors import DecodeError

CASES = 1500


def _damaged(good: bytes, rng: random.Random) -> bytes:
    buf = bytearray(good)
    for _ in range(rng.choice([1, 2, 3, 8])):
        # Mostly in the headers (the first 200 bytes), where damage is most dangerous.
        at = rng.randrange(min(len(buf), 200) if rng.random() < 0.7 else len(buf))
        buf[at] ^= (1 << rng.randrange(8)) if rng.random() < 0.5 else 0xFF
    return bytes(buf)


def _decode_in_child(data: bytes, content_type: str) -> str | None:
    """How the child ended if not normally: a signal's name, or "raised X" for an error
    other than DecodeError (the one way decode may refuse a frame)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            signal.alarm(10)
            codecs.decode(data, content_type, 64, 64, 1, "<u2")
        except DecodeError:
            pass
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return "raised another error" if os.WEXITSTATUS(status) else None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to isolate the decoder")
@pytest.mark.parametrize("content_type", ["image/jphc", "image/j2c"])
def test_damaged_frames_neither_crash_nor_hang_the_decoder(content_type: str) -> None:
    pixels = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 7) % 4096
    good = (imagecodecs.htj2k_encode(pixels) if content_type == "image/jphc"
            else imagecodecs.jpeg2k_encode(pixels, level=0))
    rng = random.Random(7)
    ended_badly: list[tuple[int, str]] = []
    refused = 0
    for case in range(CASES):
        data = _damaged(good, rng)
        try:
            codecs.check_jpeg2000_header(data, 64, 64, 1, 2)
        except DecodeError:
            refused += 1  # never reaches a decoder
            continue
        ended = _decode_in_child(data, content_type)
        if ended is not None:
            ended_badly.append((case, ended))
    assert not ended_badly, ended_badly
    assert 0 < refused < CASES  # the check refuses some, and lets the others through
