"""A cap on each import worker's memory, and telling when a failure came from it.

The size checks (:mod:`.size_checks`) stop what headers declare; the cap stops what
they cannot see (a decoder's working memory, a codec that allocates more than its
header says). It is an address-space limit (``RLIMIT_AS``) set in the worker when the
pool starts it, on top of what the worker holds once its conversion modules are loaded,
so that the same setting means the same room on any machine, whatever its thread stacks
and libraries reserve. An allocation past it fails inside the worker: numpy raises
MemoryError, a codec returns an error, and the file gets a FAILURE record. If the
worker dies instead, the importer gives each file it held a second chance alone
(:mod:`.importer`).

Where ``resource`` does not exist (Windows) there is no cap; the size checks still hold.
"""

from __future__ import annotations

import re

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

#: The cap set in this process (bytes of address space), if any.
_cap: int | None = None
#: A failure counts as the cap's doing when the worker's peak came this close to it.
_NEAR = 64 * 1024**2


def limit_memory(budget: int | None) -> None:
    """Allow this process ``budget`` more bytes of address space than it holds now.

    Called in a fresh worker once the conversion modules are loaded
    (:func:`.convert.start_worker`), so the budget is all for the files.
    """
    global _cap
    if not budget or resource is None:
        return
    cap = _status_bytes("VmSize") + budget
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    _cap = cap


def peak() -> int:
    """The most address space this process has held so far (0 where /proc is missing)."""
    return _status_bytes("VmPeak")


def hit_the_cap(peak_before: int) -> bool:
    """Whether the work done since ``peak()`` was ``peak_before`` ran into the cap.

    The peak only grows; if it grew during the work to within a few dozen MB of the cap,
    an allocation of that work's was refused. (A single allocation bigger than all the
    room left does not move the peak: numpy reports those as MemoryError itself.)
    """
    if _cap is None:
        return False
    now = peak()
    return now > peak_before and now >= _cap - _NEAR


def _status_bytes(field: str) -> int:
    try:
        with open("/proc/self/status") as status:
            found = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    except OSError:
        return 0
    return int(found.group(1)) * 1024 if found else 0
