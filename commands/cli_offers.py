"""`tsunagari offers ...`: off-policy evaluation on logged data, the learning simulation, the decision log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from commands.cli_runtime import run_reporting_errors
from domain.clock import SystemClock
from infra.charts import Series, line_chart
from infra.db import Database
from infra.settings import Settings
from offers.evaluation import Evaluation, evaluate_log
from offers.logs import LogFormatError, read_log
from offers.program import load_offer_program
from offers.rules.estimators import Interval, relative_error
from offers.simulation import SimulationResult, simulate


def add_offer_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    offers = commands.add_parser("offers", help="personalised offers").add_subparsers(
        required=True, metavar="ACTION"
    )
    evaluate = offers.add_parser(
        "evaluate", help="estimate a policy's reward off-policy (IPW, SNIPW, DR) from a logged-bandit file"
    )
    evaluate.add_argument(
        "--log", required=True, type=Path, help="Open Bandit Dataset CSV or export-log JSONL"
    )
    evaluate.add_argument(
        "--policy",
        choices=("learned", "uniform", "frequencies"),
        default="learned",
        help="learned: the serving policy trained on the log's earlier part (default); "
        "frequencies: choose as often as the --reference log chose",
    )
    evaluate.add_argument("--reference", type=Path, help="log whose choice frequencies are replayed")
    evaluate.add_argument("--train-share", type=float, default=0.7, help="earlier share to train on")
    evaluate.add_argument("--resamples", type=int, default=1_000, help="bootstrap resamples")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    evaluate.set_defaults(run=_evaluate)

    sim = offers.add_parser("simulate", help="members with hidden tastes vs the real policy: learning curve")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--decisions", type=int, default=20_000)
    sim.add_argument("--chart", type=Path, help="write the learning curve as SVG here")
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(run=_simulate)

    export = offers.add_parser("export-log", help="write the decision log as JSONL for `offers evaluate`")
    export.add_argument("--out", required=True, type=Path)
    export.set_defaults(run=_export_log)


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    if not 0 < args.train_share < 1 or not 1 <= args.resamples <= 100_000:
        print("tsunagari: --train-share must be in (0, 1) and --resamples in 1..100000", file=sys.stderr)
        return 2
    params = load_offer_program(settings.offer_program).selection
    try:
        decisions = read_log(args.log)
        reference = read_log(args.reference) if args.reference else []
        result = evaluate_log(
            decisions,
            args.policy,
            params,
            reference=reference,
            train_share=args.train_share,
            resamples=args.resamples,
            seed=args.seed,
        )
    except (OSError, LogFormatError, ValueError) as error:
        print(f"tsunagari: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(msgspec.json.encode(result).decode())
    else:
        actual = sum(decision.reward for decision in reference) / len(reference) if reference else None
        print(_evaluation_text(result, actual))
    return 0


def _interval(name: str, interval: Interval) -> str:
    return f"  {name:<6} {interval.estimate:.5f}  95% [{interval.low:.5f}, {interval.high:.5f}]"


def _evaluation_text(result: Evaluation, reference_reward: float | None) -> str:
    estimates = result.estimates
    lines = [
        f"policy {result.policy}: trained on {result.trained_on} decisions, "
        f"evaluated on {result.evaluated_on}",
        f"  logged policy's actual reward on them: {result.logged_reward:.5f}",
        _interval("IPW", estimates.ipw),
        _interval("SNIPW", estimates.snipw),
        _interval("DR", estimates.dr),
    ]
    if reference_reward is not None:
        actual = reference_reward
        lines.append(f"  reference log's actual reward: {actual:.5f}")
        for name, interval in (("IPW", estimates.ipw), ("SNIPW", estimates.snipw), ("DR", estimates.dr)):
            lines.append(f"  {name} relative error: {relative_error(interval.estimate, actual):.1%}")
    return "\n".join(lines)


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    if not 1_000 <= args.decisions <= 1_000_000:
        print("tsunagari: --decisions must be in 1000..1000000", file=sys.stderr)
        return 2
    result = simulate(
        load_offer_program(settings.offer_program).selection, seed=args.seed, decisions=args.decisions
    )
    if args.chart:
        args.chart.write_text(learning_curve_chart(result), encoding="utf-8")
    if args.json:
        print(msgspec.json.encode(result).decode())
    else:
        totals = result.totals()
        print(
            f"seed {result.seed}: {result.members} members, {result.offers} offers, "
            f"{totals.decisions} decisions"
        )
        print(
            f"  clip rate per decision, whole run: learned {totals.learned:.3f}, "
            f"uniform {totals.uniform:.3f}, best fixed offer {totals.best_fixed:.3f}"
        )
        last = result.curve[-1]
        print(
            f"  last batch: learned {last.learned:.3f}, uniform {last.uniform:.3f}, "
            f"best fixed {last.best_fixed:.3f}"
        )
    return 0


def learning_curve_chart(result: SimulationResult) -> str:
    def series(name: str, field: str) -> Series:
        return Series(name, [(float(p.decisions), float(getattr(p, field))) for p in result.curve])

    return line_chart(
        [
            series("learned policy", "learned"),
            series("best fixed offer", "best_fixed"),
            series("uniform random", "uniform"),
        ],
        title=f"Offer selection learning curve (simulation, seed {result.seed})",
        x_label="decisions",
        y_label="clip rate per decision (batch mean)",
    )


def _export_log(args: argparse.Namespace, settings: Settings) -> int:
    from offers.decisions import export_log

    async def export(db: Database) -> str:
        with args.out.open("wb") as out:
            count = await export_log(db, out, load_offer_program(settings.offer_program), SystemClock().now())
        return f"{count} decisions written to {args.out}"

    return run_reporting_errors(settings, export)
