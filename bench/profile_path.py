"""Where the server's Python time goes on one hot path: py-spy samples the server under wrk load.

    .venv/bin/python -m bench.profile_path --path purchase [--seconds 15] [--clients 16]
                                           [--server uvicorn|granian] [--stacks FILE]

Builds a small world (bench.hot_path_data), serves it with one worker, sends the path's prepared requests
with wrk for `--seconds`, and samples every process of the server with py-spy (`--idle` off: only time
on the CPU). Prints the share of samples by layer (the package whose code is running: the app's own,
litestar, SQLAlchemy, asyncpg, uvicorn, asyncio, ...) and the functions with the most samples, inclusive
of what they call; `--stacks` keeps the collapsed stacks for a flame graph.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import fresh_database, running_server_process, wrk_output
from bench.hot_path_data import Sizes, World, build_world
from bench.hot_paths import WARM_UP_REQUEST, hot_paths
from bench.side_by_side import LINES_PER_SECOND, PATH_NAMES

DATABASE = "bench_profile"
SAMPLES_PER_SECOND = 250
TOP_FUNCTIONS = 30
_REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Frame:
    function: str
    file: str

    @property
    def layer(self) -> str:
        """The package a frame's code belongs to (the app's own marked `app:`)."""
        top = Path(self.file).parts[0] if self.file else "?"  # py-spy names files from their root
        return f"app:{top}" if (_REPO / top).is_dir() else top.removesuffix(".py")


def parse_frame(text: str) -> Frame:
    """A py-spy raw frame, `function (file:line)`."""
    function, _, where = text.rpartition(" (")
    return Frame(function or text, where.rsplit(":", 1)[0] if where else "")


def summarise(collapsed: str) -> tuple[int, Counter[str], Counter[str]]:
    """Samples in all, samples by layer of the running (leaf) frame, and by function inclusive."""
    total = 0
    by_layer: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [parse_frame(part) for part in stack.split(";")[1:]]  # the first is the process
        if not frames:
            continue
        total += count
        by_layer[frames[-1].layer] += count
        for name in {f"{frame.function} [{frame.layer}]" for frame in frames}:
            inclusive[name] += count
    return total, by_layer, inclusive


def report(total: int, by_layer: Counter[str], inclusive: Counter[str]) -> None:
    print(f"\n{total} samples on the CPU\n\nby layer (the code running when sampled):")
    for layer, count in by_layer.most_common():
        print(f"  {count / total:6.1%}  {layer}")
    print(f"\nfunctions, inclusive of what they call (top {TOP_FUNCTIONS}):")
    for name, count in inclusive.most_common(TOP_FUNCTIONS):
        print(f"  {count / total:6.1%}  {name}")


def _which(tool: str) -> str:
    """A tool on PATH or next to this Python (py-spy comes with the dev extras into the virtualenv)."""
    return (
        shutil.which(tool, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        or ""
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--path", required=True, choices=PATH_NAMES)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--server", default="uvicorn", choices=("uvicorn", "granian"))
    parser.add_argument("--stacks", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--native", action="store_true", help="C frames too (Cython drivers, msgspec)")
    args = parser.parse_args()
    for tool in ("wrk", "py-spy"):
        if not _which(tool):
            raise SystemExit(f"this needs {tool} on PATH (wrk from apt, py-spy from the dev extras)")
    if not 1 <= args.seconds <= 50:
        raise SystemExit("--seconds must be 1..50: rotating codes are computed for mid-run (valid ±30 s)")
    requests = LINES_PER_SECOND * (args.seconds + 2) + WARM_UP_REQUEST + 2
    sizes = Sizes(
        stores=2_000,
        shoppers=500,
        redeemers=requests // 99 + WARM_UP_REQUEST + 1,
        check_in_members=requests,
        timeline_events=20_000,
        offers=50,
    )
    world = asyncio.run(_world(sizes))
    path = next(p for p in hot_paths(world) if p.name == args.path)
    now = datetime.now(UTC)
    warm = [path.line(n, f"pw{n}", now) for n in range(WARM_UP_REQUEST + 1, WARM_UP_REQUEST + 1 + 600)]
    first = WARM_UP_REQUEST + 1 + len(warm)
    mid_run = datetime.fromtimestamp(time.time() + args.seconds / 2, UTC)
    lines = [path.line(n, f"pm{n}", mid_run) for n in range(first, first + LINES_PER_SECOND * args.seconds)]
    stacks = args.stacks or Path(tempfile.mkdtemp()) / f"{args.path}.collapsed"
    with running_server_process(world.settings, args.server) as running:
        base = running.url
        wrk_output(base, path.target, args.clients, 1, warm)
        spy = subprocess.Popen(
            [
                *(
                    _which("py-spy"),
                    "record",
                    "--subprocesses",
                    "--nonblocking",
                    "--format",
                    "raw",
                ),
                *("--rate", str(SAMPLES_PER_SECOND), "--duration", str(args.seconds)),
                *("--output", str(stacks), "--pid", str(running.pid)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(wrk_output(base, path.target, args.clients, args.seconds, lines))
        spy.wait(timeout=args.seconds + 60)
    report(*summarise(stacks.read_text()))
    print(f"\ncollapsed stacks: {stacks}")


async def _world(sizes: Sizes) -> World:
    return await build_world(await fresh_database(DATABASE), 1, sizes)


if __name__ == "__main__":
    main()
