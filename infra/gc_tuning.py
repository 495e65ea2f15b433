"""The cyclic garbage collector set for serving.

A request allocates thousands of short-lived objects (rows, parameters, structs, coroutines). With
CPython's default thresholds the collector runs every 700 net allocations, several times per request,
and its older-generation passes walk every long-lived object the process holds (the framework's routes
and signatures, SQLAlchemy's compiled statements, the store index). While the app serves, what it built
at startup is kept out of the collector's sight (`gc.freeze`: it lives as long as the app anyway) and
young collections run less often; cycles are still found and freed. Measured on the POS purchase in
bench/README.md ("Garbage collection").
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Net allocations between young collections; the older generations keep CPython's ratios.
YOUNG_COLLECTION_EVERY = 50_000


_before: list[tuple[int, int, int]] = []  # the thresholds found by the first app to serve, while it does
_apps_serving = 0


@contextmanager
def settled_for_serving() -> Iterator[None]:
    """Around serving: entered once the app is built, left when it stops. Apps serving side by side in
    one process (tests) share the setting; the last one to stop leaves the collector as it was."""
    global _apps_serving  # one collector per process, so one count
    if _apps_serving == 0:
        _before.append(gc.get_threshold())
        gc.freeze()
        gc.set_threshold(YOUNG_COLLECTION_EVERY, *_before[0][1:])
    _apps_serving += 1
    try:
        yield
    finally:
        _apps_serving -= 1
        if _apps_serving == 0:
            gc.set_threshold(*_before.pop())
            gc.unfreeze()
