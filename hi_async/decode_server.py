"""Imported first by the decode pool's fork server (``--pool process``), as a preload.

The fork server is a child of the downloading process, and the decode workers are
children of the fork server. Importing this ties the server's life to the process that
started it; each worker ties its own to the server (``decodepool._init_worker``). So a
SIGKILLed download takes the server and the workers with it, and multiprocessing's
resource tracker, whose pipe they all hold, then sees it close and exits too.
"""

from __future__ import annotations

import os

from .libc import die_with_parent

die_with_parent(os.getppid())
