"""bench/invoke.py's --warm phase: the warmed c16 windows beside the fresh one.

`measure.warmed_c16` runs against a real floor relay (tools/floor.py, a child process);
the report's rows and header are checked on a result document shaped as invoke.py writes it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from lib import measure, report, servers  # noqa: E402 (bench/ on sys.path first)


def test_warmed_c16_keeps_every_window_and_pools_the_measured_ones():
    options = measure.BenchOptions(n=1, warmup=0, duration=0.3, tp_warmup_s=0.2)
    with servers.FloorRelay(str(measure.TOOLS / "floor.py"), "raw-rawworker", 1) as relay:
        res = measure.warmed_c16(relay.endpoint, "floor", relay.pid, options, 0.8, "t", (), 2)
    assert "error" not in res, res.get("error")
    # 0.8 s of warm-up in windows of 0.3 + 0.2 s: two windows, then the two measured ones
    windows = res["run"]["throughput"]
    assert [tp["concurrency"] for tp in windows] == [16] * 4
    assert len(res["trajectory"]) == 4
    assert res["warm_s"] >= 0.8
    figures = res["figures"]
    measured = windows[2:]
    calls = sum(tp["ok_calls"] for tp in measured)
    cpu = sum(tp["server_cpu_us_per_call"] * tp["ok_calls"] for tp in measured) / calls
    assert figures["c16_cpu_us_per_call"] == pytest.approx(cpu, abs=0.1)
    assert figures["c16_calls_per_s"] > 0 and figures["measured_windows"] == 2
    assert figures["p50_us"] is None  # one sequential call is no latency figure


def _run(cpu: float, main: float | None = None) -> dict:
    figures = {"c16_cpu_us_per_call": cpu, "c16_main_cpu_us_per_call": main}
    return {
        "figures": figures,
        "trajectory": [{"cpu_us_per_call": cpu * 1.5}, {"cpu_us_per_call": cpu}],
    }


def _doc(warm_s: float) -> dict:
    repeats = []
    for scale in (1.0, 1.2):
        floor = {"raw": _run(200 * scale), "warmed": _run(190 * scale)}
        lamina = {
            kind: {
                "raw": _run(fresh * scale, 400 * scale),
                "warmed": _run(warm * scale, 330 * scale),
            }
            for kind, fresh, warm in (("python", 600, 470), ("node", 820, 570))
        }
        repeats.append({"floor": {"relay_lean_w1": floor}, "lamina": {"warm": lamina}})
    return {"ts": "t", "warm_c16_s": warm_s, "repeats": repeats}


def test_report_has_the_warmed_target_rows_and_says_how_long_it_warmed():
    doc = report.summarize(_doc(60))
    rows = {row["figure"]: row for row in doc["targets"]}
    fresh = rows["CPU per warm call c16, node, raw client"]
    warmed = rows["CPU per warm call c16, after 60 s at c16, node, raw client"]
    assert fresh["ratio"]["median"] == pytest.approx(820 / 200)
    assert warmed["ratio"]["median"] == pytest.approx(570 / 190)
    assert (fresh["verdict"], warmed["verdict"]) == ("MISS", "MISS")
    assert rows["CPU per warm call c16, after 60 s at c16, python, raw client"]["verdict"] == "PASS"
    text = report.markdown(doc)
    assert "--warm 60: the 'warmed' ones come after" in text
    assert "### Warmed: three c16 windows after 60 s at 16 clients (raw client)" in text
    # Lamina, node: fresh 820 and 984 (median 902), warmed ÷ fresh 0.70 and the engine's
    # 330 ÷ 400 in both repeats; the first repeat's warm-phase windows: 855 then 570
    line = next(x for x in text.splitlines() if x.startswith("| Lamina, node | 902"))
    assert "| 0.70 |" in line and "| 0.82 |" in line and "| 855 570 |" in line


def test_a_run_without_warm_reports_fresh_windows_only():
    doc = _doc(0)
    for rep in doc["repeats"]:
        rep["floor"]["relay_lean_w1"].pop("warmed")
        for kind in ("python", "node"):
            rep["lamina"]["warm"][kind].pop("warmed")
    doc = report.summarize(doc)
    assert not [r for r in doc["targets"] if "after" in r["figure"]]
    text = report.markdown(doc)
    assert "no --warm phase" in text and "### Warmed" not in text
