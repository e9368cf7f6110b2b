"""``python -m hi_async bench``: hi_async, a sequential client and the decode ceiling on
the same frames of one local stack, in one run. :mod:`hi_async.bench.main` runs it."""
