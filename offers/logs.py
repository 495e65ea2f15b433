"""Logged bandit data, read into one shape: the project's decision log export and Open Bandit Dataset CSVs.

The Open Bandit Dataset (Saito, Aihara, Matsutani, Narita, NeurIPS 2021 Datasets and Benchmarks; real
logs of ZOZOTOWN's fashion recommendations) has a row per shown item: `timestamp, item_id, position,
click, propensity_score, user_feature_0..3, user-item_affinity_0..N`. Its hashed user features become
the context's facts, each item a candidate with its user-item affinity, its position the slot.

The project's own log (`tsunagari offers export-log`) is JSON lines of `LoggedDecision`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import msgspec

from offers.rules.features import Candidate, Context

MAX_LOG_ROWS = 5_000_000  # a log larger than this is refused rather than exhausting memory


class LogFormatError(ValueError):
    pass


class LoggedDecision(msgspec.Struct, frozen=True):
    decided_at: datetime
    context: Context
    position: int
    candidates: tuple[Candidate, ...]
    chosen: str
    propensity: float
    reward: float


def read_log(path: Path) -> list[LoggedDecision]:
    """Every decision of the file, oldest first; LogFormatError names the first bad line."""
    with path.open(newline="", encoding="utf-8") as file:
        first = file.readline()
        file.seek(0)
        rows = (
            _json_lines(file) if first.lstrip().startswith("{") else _open_bandit_rows(csv.DictReader(file))
        )
        decisions = []
        for decision in rows:
            decisions.append(decision)
            if len(decisions) > MAX_LOG_ROWS:
                raise LogFormatError(f"more than {MAX_LOG_ROWS} rows")
    if not decisions:
        raise LogFormatError("the log holds no decision")
    return sorted(decisions, key=lambda decision: decision.decided_at)


def _json_lines(lines: Iterator[str]) -> Iterator[LoggedDecision]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                decision = msgspec.json.decode(line, type=LoggedDecision)
            except msgspec.ValidationError as error:
                raise LogFormatError(f"line {number}: {error}") from error
            _check(decision, number)
            yield decision


def _open_bandit_rows(reader: csv.DictReader[str]) -> Iterator[LoggedDecision]:
    fields = reader.fieldnames or []
    affinity = sorted(
        (field for field in fields if field.startswith("user-item_affinity_")),
        key=lambda field: int(field.rsplit("_", 1)[1]),
    )
    users = sorted(field for field in fields if field.startswith("user_feature_"))
    missing = {"timestamp", "item_id", "position", "click", "propensity_score"} - set(fields)
    if missing or not affinity:
        raise LogFormatError(f"not an Open Bandit Dataset log: missing {sorted(missing) or 'affinities'}")
    for number, row in enumerate(reader, start=2):
        try:
            candidates = tuple(
                Candidate(key=field.rsplit("_", 1)[1], affinity=float(row[field])) for field in affinity
            )
            decision = LoggedDecision(
                decided_at=datetime.fromisoformat(row["timestamp"]),
                context=Context(tokens=tuple(f"{field}={row[field]}" for field in users)),
                position=int(row["position"]),
                candidates=candidates,
                chosen=str(int(row["item_id"])),
                propensity=float(row["propensity_score"]),
                reward=float(row["click"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise LogFormatError(f"line {number}: {error}") from error
        _check(decision, number)
        yield decision


def _check(decision: LoggedDecision, number: int) -> None:
    if decision.decided_at.tzinfo is None:
        raise LogFormatError(f"line {number}: the time needs a time zone")
    if not 0 < decision.propensity <= 1:
        raise LogFormatError(f"line {number}: propensity must be in (0, 1]")
    if decision.position < 1:
        raise LogFormatError(f"line {number}: positions start at 1")
    keys = [candidate.key for candidate in decision.candidates]
    if decision.chosen not in keys:
        raise LogFormatError(f"line {number}: the chosen action is not among the candidates")
    if len(set(keys)) != len(keys):
        raise LogFormatError(f"line {number}: a candidate is listed twice")
    if not 0 <= decision.reward <= 1:
        raise LogFormatError(f"line {number}: rewards must be in [0, 1]")
    numbers = [c.affinity for c in decision.candidates] + [c.cost for c in decision.candidates]
    numbers += [value for _, value in decision.context.numbers]
    if not all(math.isfinite(value) and abs(value) <= 1_000 for value in numbers):
        raise LogFormatError(
            f"line {number}: affinities, costs and context numbers must be finite, within 1000"
        )
