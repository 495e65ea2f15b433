"""The growth benchmark's report, as Markdown tables: build, sizes, figures by size and workers, plans."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence

from bench.growth_data import Size
from bench.growth_measure import PATH_LABELS, Run
from bench.growth_plans import Plan

GB = 1024**3


def build_table(steps: Sequence[tuple[str, float]]) -> str:
    """The build steps and how long each took, with their total."""
    rows = [f"| {label} | {seconds:,.0f} s |" for label, seconds in steps]
    total = sum(seconds for _, seconds in steps)
    return "\n".join(["| build step | time |", "|---|---:|", *rows, f"| **total** | **{total:,.0f} s** |"])


def sizes_table(sizes: dict[str, int], relations: Sequence[tuple[str, int, int]]) -> str:
    """Each database's size on disk, then the large one's largest tables: rows and bytes."""
    lines = ["| database / largest tables of the large one | rows (estimated) | size |", "|---|---:|---:|"]
    lines += [f"| {name} | | {size / GB:,.2f} GB |" for name, size in sizes.items()]
    lines += [f"| {name} | {rows:,} | {size / GB:,.2f} GB |" for name, rows, size in relations]
    return "\n".join(lines)


def _median(values: Iterable[float]) -> float:
    """The median, NaN for none (a group no round measured)."""
    found = list(values)
    return statistics.median(found) if found else math.nan


def _ratio(numerator: float, denominator: float) -> str:
    """numerator / denominator, "-" where either is missing or zero (nothing served)."""
    if math.isnan(numerator) or math.isnan(denominator) or not numerator or not denominator:
        return "-"
    return f"{numerator / denominator:.2f}"


def _shown(value: float, pattern: str) -> str:
    return "-" if math.isnan(value) else format(value, pattern)


def _runs(runs: list[Run], path: str, workers: int, size: Size) -> list[Run]:
    return [run for run in runs if (run.path, run.workers, run.size) == (path, workers, size)]


def _rate(runs: list[Run]) -> str:
    rates = [run.result.per_second for run in runs]
    if not rates:
        return "-"
    return f"{statistics.median(rates):,.0f} ({min(rates):,.0f} to {max(rates):,.0f})"


def _latency(runs: list[Run]) -> str:
    p50 = _median(run.result.p50_ms for run in runs)
    p99 = _median(run.result.p99_ms for run in runs)
    return f"{_shown(p50, ',.1f')} / {_shown(p99, ',.1f')}"


def _per_second(runs: list[Run]) -> float:
    return _median(run.result.per_second for run in runs)


def figures_table(runs: list[Run]) -> str:
    """Per path and worker count: req/s (median, and the range over repeats), latencies, the CPU other
    work took and what was read from disk meanwhile (medians), and large over small."""
    lines = [
        "| path | workers | small req/s (range) | large req/s (range) | large / small "
        "| small p50 / p99 ms | large p50 / p99 ms | others' CPU small / large | disk MB small / large "
        "| failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for path, label in PATH_LABELS.items():
        for workers in sorted({run.workers for run in runs}):
            small, large = (_runs(runs, path, workers, size) for size in Size)
            ratio = _ratio(_per_second(large), _per_second(small))
            others = " / ".join(
                _shown(_median(r.others_cpu_share for r in group), ".0%") for group in (small, large)
            )
            disk = " / ".join(
                _shown(_median(r.machine.disk_read_mb for r in group), ",.0f") for group in (small, large)
            )
            failed = sum(run.result.failed for run in small + large)
            lines.append(
                f"| {label} | {workers} | {_rate(small)} | {_rate(large)} | {ratio} "
                f"| {_latency(small)} | {_latency(large)} | {others} | {disk} | {failed} |"
            )
    return "\n".join(lines)


def workers_table(runs: list[Run]) -> str:
    """Req/s with the most workers over req/s with one, per path and size (medians)."""
    most = max(run.workers for run in runs)
    lines = [f"| path | small: {most} workers / 1 | large: {most} workers / 1 |", "|---|---:|---:|"]
    for path, label in PATH_LABELS.items():
        ratios = [
            _ratio(_per_second(_runs(runs, path, most, size)), _per_second(_runs(runs, path, 1, size)))
            for size in Size
        ]
        lines.append(f"| {label} | {ratios[0]} | {ratios[1]} |")
    return "\n".join(lines)


def cpu_table(runs: list[Run]) -> str:
    """CPU milliseconds per request of the server's processes and of PostgreSQL's backends serving the
    database (medians): what each request costs whatever else shares the machine."""
    lines = [
        "| path | workers | small: app / PostgreSQL ms | large: app / PostgreSQL ms |",
        "|---|---:|---:|---:|",
    ]
    for path, label in PATH_LABELS.items():
        for workers in sorted({run.workers for run in runs}):
            cells = []
            for size in Size:
                group = [
                    run.cpu.per_request_ms(run.result.requests) for run in _runs(runs, path, workers, size)
                ]
                app, postgres = (_median(ms[side] for ms in group) for side in (0, 1))
                cells.append(f"{_shown(app, '.2f')} / {_shown(postgres, '.2f')}")
            lines.append(f"| {label} | {workers} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _paired(small: list[Plan], large: list[Plan]) -> list[tuple[str, Plan | None, Plan | None]]:
    """Each statement and its plans at both sizes, paired by what the statement is (its n-th
    occurrence with the n-th), in the large size's order; None where a size did not run it."""

    def keyed(plans: list[Plan]) -> dict[tuple[str, int], Plan]:
        seen: Counter[str] = Counter()
        found = {}
        for plan in plans:
            seen[plan.statement] += 1
            found[(plan.statement, seen[plan.statement])] = plan
        return found

    small_by, large_by = keyed(small), keyed(large)
    keys = [*large_by, *(key for key in small_by if key not in large_by)]
    return [(statement, small_by.get((statement, n)), large_by.get((statement, n))) for statement, n in keys]


def plans_table(small: dict[str, list[Plan]], large: dict[str, list[Plan]]) -> str:
    """Each statement of a request at both sizes: time, shared buffers touched (of which read from
    outside shared_buffers, and how long those reads took), sequential scans, and the most rows a node
    filtered out; a statement seen at one size only is marked so."""
    lines = [
        "| path | # | statement | small ms | large ms | small buffers (read) | large buffers (read, ms) "
        "| seq scans small; large | rows filtered (large) |",
        "|---|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    for path in PATH_LABELS:
        pairs = _paired(small.get(path, []), large.get(path, []))
        for n, (statement, at_small, at_large) in enumerate(pairs, 1):
            shown = statement if len(statement) < 90 else statement[:87] + "..."
            if at_small is None or at_large is None:
                shown += f" (**{'large' if at_small is None else 'small'} only**)"
            lines.append(
                f"| {path} | {n} | {shown} | {_plan_ms(at_small)} | {_plan_ms(at_large)} "
                f"| {_plan_buffers(at_small, with_ms=False)} | {_plan_buffers(at_large, with_ms=True)} "
                f"| {_plan_scans(at_small)}; {_plan_scans(at_large)} "
                f"| {f'{at_large.rows_removed:,}' if at_large else '-'} |"
            )
    return "\n".join(lines)


def _plan_ms(plan: Plan | None) -> str:
    return f"{plan.duration_ms:.2f}" if plan else "-"


def _plan_buffers(plan: Plan | None, *, with_ms: bool) -> str:
    if plan is None:
        return "-"
    read = f"{plan.read_buffers}, {plan.read_ms:.2f}" if with_ms else f"{plan.read_buffers}"
    return f"{plan.buffers} ({read})"


def _plan_scans(plan: Plan | None) -> str:
    return ", ".join(plan.seq_scans) if plan and plan.seq_scans else "-"
