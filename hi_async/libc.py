"""The few Linux system calls Python's standard library does not offer: ``syncfs``,
``fallocate`` with its flags, and ``prctl`` (and :func:`die_with_parent`, built on it).
Each is None where the C library lacks it.

The C library is the one the interpreter itself is linked with (``CDLL(None)``): looking
it up by name (``ctypes.util.find_library``) runs ``ldconfig`` in a subprocess, which
would cost every start a noticeable pause.
"""

from __future__ import annotations

import ctypes
from typing import Any


def _function(name: str, argtypes: list[Any]) -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function


#: syncfs(fd): write back everything of the file system that holds ``fd``.
syncfs = _function("syncfs", [ctypes.c_int])
#: fallocate(fd, mode, offset, length).
fallocate = _function("fallocate", [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                                    ctypes.c_int64])
#: prctl(option, arg2, arg3, arg4, arg5).
prctl = _function("prctl", [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                            ctypes.c_ulong])


def errno_error(path: str = "") -> OSError:
    """The OSError for the last failed call (its errno)."""
    import os

    err = ctypes.get_errno()
    return OSError(err, os.strerror(err), path) if path else OSError(err, os.strerror(err))


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux), and exit now
    if the parent (``parent_pid``) is already gone.

    A helper process must not outlive the process it serves, even a SIGKILLed one that
    had no chance to stop it. Elsewhere the caller needs a way of its own (a pipe that
    closes when the parent dies).
    """
    import os
    import signal

    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(0)


def exit_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """Exit this process (from a daemon thread) once ``parent_pid`` is no longer its
    parent.

    For processes a parent-death signal cannot cover: the kernel sends that signal when
    the *thread* that started the process exits, and pool workers are started by whichever
    thread submits work. Polling costs one system call a second.
    """
    import os
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
