"""The pure-Python part of `make bench`: the decide() benchmark, its table, its command line."""

from __future__ import annotations

import math

import pytest

from benchmarks import domain_decide, sealing_cost
from benchmarks.__main__ import main
from benchmarks.report import Ceiling, Figure, goals_table, percentile, table
from benchmarks.system import _cpu_goals

pytestmark = pytest.mark.unit


def test_decide_benchmark_lives_end_as_the_mix_says() -> None:
    outcome = domain_decide.run_once(200)

    assert outcome.statuses == {"completed": 160, "cancelled": 20, "failed": 20}
    # Three changes per life (start, accept, result), plus the receipt after a query success;
    # the repeated callback and the expiry after the end change nothing.
    assert outcome.changes == 200 * 3 + 20
    assert outcome.facts == 200 * 5 + 20
    assert outcome.facts_per_s > 0


def test_quick_decide_benchmark_reports_throughput_and_time_per_fact() -> None:
    figures = {f.name: f for f in domain_decide.run(quick=True)}

    assert figures["throughput"].unit == "facts/s"
    assert figures["throughput"].value > 0
    assert figures["per fact"].value == pytest.approx(1e6 / figures["throughput"].value)


def test_percentile_is_the_nearest_rank() -> None:
    samples = [float(n) for n in range(100, 0, -1)]

    assert percentile(samples, 50) == 50
    assert percentile(samples, 99) == 99
    assert percentile(samples, 100) == 100
    assert math.isnan(percentile([], 99))


def test_table_prints_each_figure_next_to_its_ceiling_and_ratio() -> None:
    ceiling = Ceiling(630, "req/s", "http-payment uvicorn 1w c=32")
    figures = [
        Figure("initiate (HTTP)", "throughput", 315, "req/s", ceiling),
        Figure("peak RSS", "api process", 101.5, "MiB"),
    ]

    rows = table(figures).splitlines()

    assert "315 req/s" in rows[2]
    assert "630 req/s (http-payment uvicorn 1w c=32)" in rows[2]
    assert "0.50x" in rows[2]
    assert "102 MiB" in rows[3]  # no ceiling, no ratio
    assert rows[3].split("102 MiB")[1].split()[:2] == ["-", "-"]


def test_ratio_is_left_out_when_the_units_differ() -> None:
    figure = Figure("x", "latency", 3.0, "ms", Ceiling(1.5, "ms/req", "other"))

    assert figure.ratio is None


def test_domain_only_quick_run_prints_the_table_and_exits_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["--quick", "--domain-only"])

    out = capsys.readouterr().out
    assert status == 0
    assert "domain decide()" in out
    assert "facts/s" in out


def test_sealing_benchmark_reports_cpu_ms_per_initiate_and_per_push() -> None:
    figures = {f.name: f for f in sealing_cost.run(quick=True)}

    assert figures["per initiate"].unit == "CPU ms"
    assert 0 < figures["per initiate"].value < figures["per push"].value * 10
    assert "budget" in figures["per initiate"].note


def test_a_cpu_goal_whose_reference_read_zero_is_not_measured_rather_than_a_crash() -> None:
    # A quick run drains so few no-op jobs that the 10 ms CPU clock can read no time at all.
    over_ref, as_written = _cpu_goals(
        "worker", "CPU per push", 3.0, 4.0, ("no-op drain", 0.0, 0.36)
    )

    rows = goals_table([over_ref, as_written]).splitlines()

    assert "n/a x" in rows[2]
    assert "NOT MEASURED" in rows[2]
    assert "PASS" in rows[3]


def test_a_cpu_goal_is_judged_against_its_reference_of_the_same_run() -> None:
    over_ref, _ = _cpu_goals("worker", "CPU per push", 6.0, 4.0, ("no-op drain", 0.5, 0.36))

    assert over_ref.value == pytest.approx(12.0)
    assert over_ref.limit == pytest.approx(4.0 / 0.36)
    assert over_ref.verdict == "FAIL"
