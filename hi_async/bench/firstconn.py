"""When does a client first connect to the endpoint? Start-up time without a client hook.

The emulator counts a request only after answering it (and after the injected latency),
so its stats cannot time the first request. The kernel can: a client's first request
opens a TCP connection to the endpoint's port, which appears in /proc/net/tcp at once
(already in SYN_SENT). The watcher snapshots the connections that exist before the client
starts and polls for the first new one to that port.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def connections_to(port: int) -> set[str]:
    """Local ``address:port`` of every socket whose remote end is ``port``."""
    found: set[str] = set()
    for table in _TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and int(fields[2].rsplit(":", 1)[1], 16) == port:
                found.add(fields[1])
    return found


class FirstConnection:
    """A ``watch`` callback for :func:`proctree.run_measured`: ``seconds`` after start."""

    def __init__(self, port: int, interval: float = 0.001) -> None:
        self.port = port
        self.interval = interval
        self.seconds: float | None = None
        self._before = connections_to(port)

    def __call__(self, proc: subprocess.Popen[str], done: threading.Event) -> None:
        started = time.perf_counter()
        while not done.is_set() and proc.poll() is None:
            if connections_to(self.port) - self._before:
                self.seconds = time.perf_counter() - started
                return
            time.sleep(self.interval)
