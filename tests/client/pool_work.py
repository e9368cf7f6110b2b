"""Work functions for the decode pool tests; a module of its own so that worker
processes can import them by name."""

from __future__ import annotations

import os
import signal

from hi_async.stages.work import Job, Outcome, run_job

#: A job with this content type kills the process that runs it, as a codec crash would.
POISON = "test/kills-its-worker"


def die_on_poison(job: Job) -> Outcome:
    if job.content_type == POISON:
        os.kill(os.getpid(), signal.SIGKILL)
    return run_job(job)


def always_die(job: Job) -> Outcome:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")
