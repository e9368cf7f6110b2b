"""A local stack started for a process stops when that process dies, SIGKILL included,
and the stack's import workers do not outlive the stack."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from hi_async.local.aws.moto_state import STATE_FILE


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead: it waits only for its parent to reap it
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_sigkilled_owner_leaves_no_stack_running_and_the_stack_saves_its_state(
        tmp_path: Path) -> None:
    # Started from a worker thread (the async path), which then sits idle: the stack must
    # live as long as its owner process, not as long as the thread that started it.
    owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, anyio
        from hi_async.local.stack import LocalStack

        async def main():
            async with LocalStack(mode="process", data_dir=sys.argv[1]) as stack:
                print(stack.pid, flush=True)
                await anyio.sleep(600)

        anyio.run(main)
        """), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        stack_pid = int(owner.stdout.readline())
        assert stack_pid != owner.pid and _alive(stack_pid)
        time.sleep(1.0)
        assert _alive(stack_pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        assert _gone_within(stack_pid, 30), "the local stack outlived its SIGKILLed owner"
        assert (tmp_path / STATE_FILE).is_file()  # it stopped cleanly: its state was saved
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.communicate()


def test_a_process_that_exits_with_its_parent_does_when_the_parent_is_sigkilled() -> None:
    # What each import worker runs at start: the parent here stands for the stack.
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "import os, time; from hi_async.libc import exit_with_parent; "
            "exit_with_parent(os.getppid(), poll_seconds=0.05); print(os.getpid(), flush=True); "
            "time.sleep(600)"], stdout=subprocess.PIPE, text=True)
        print(child.stdout.readline().strip(), flush=True)
        time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        time.sleep(0.3)
        assert _alive(child_pid)  # it does not exit while its parent lives
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert _gone_within(child_pid, 10), "the child outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.communicate()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(parent.pid, signal.SIGKILL)  # the child too, had it stayed
