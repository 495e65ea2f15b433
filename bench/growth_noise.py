"""What the whole machine did while a measurement ran: the bench shares its two cores with everything else.

Busy CPU seconds of all cores (hypervisor steal included) and bytes read from disk; with a small page
cache, the disk reads are mostly PostgreSQL reading pages it did not find in memory. What the bench's
own processes used is bench.harness.cpu_use's; the rest of the busy time is other work's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil

MB = 1024**2


@dataclass
class MachineUse:
    """The machine's busy CPU seconds, its capacity in CPU seconds and the megabytes read from disk
    during a measurement."""

    busy_cpu_s: float = 0.0
    capacity_cpu_s: float = 0.0
    disk_read_mb: float = 0.0


def _busy_cpu_s() -> float:
    times = psutil.cpu_times()
    # Linux counts guest time inside user time already; steal is time the hypervisor gave to others.
    return sum(getattr(times, field, 0.0) for field in ("user", "nice", "system", "irq", "softirq", "steal"))


def _disk_read_bytes() -> int:
    counters = psutil.disk_io_counters()
    return counters.read_bytes if counters else 0


@contextmanager
def machine_use() -> Iterator[MachineUse]:
    """Measure what all of the machine's cores and its disks did in the block."""
    used = MachineUse()
    busy, read, started = _busy_cpu_s(), _disk_read_bytes(), time.monotonic()
    yield used
    used.busy_cpu_s = _busy_cpu_s() - busy
    used.capacity_cpu_s = (time.monotonic() - started) * (psutil.cpu_count() or 1)
    used.disk_read_mb = (_disk_read_bytes() - read) / MB
