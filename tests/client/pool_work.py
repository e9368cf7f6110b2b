"""Work functions for the decode pool tests; a module of its own so that worker
processes can import them by name."""

from __future__ import annotations

import os
import signal
from typing import Any

from hi_async.model import EncodedFrame, Outcome
from hi_async.verify import verify_frame

#: A frame with this content type kills the process that runs it, as a codec crash would.
POISON = "test/kills-its-worker"


def die_on_poison(frame: EncodedFrame, **kwargs: Any) -> Outcome:
    if frame.content_type == POISON:
        os.kill(os.getpid(), signal.SIGKILL)
    return verify_frame(frame, **kwargs)


def always_die(frame: EncodedFrame, **kwargs: Any) -> Outcome:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")
