"""Headline ratios at iso-accuracy and the case-study metrics, on synthetic tables and a tiny synthetic trace."""

import json
import math

import pytest

from tflite_adaspring.bench.casestudy import ADAPTIVE, markdown, simulate
from tflite_adaspring.bench.compare import headline_ratios
from tflite_adaspring.bench.compare import markdown as compare_markdown
from tflite_adaspring.bench.headline import PAPER, ModelPoint, iso_accuracy_match, iso_accuracy_ratios, summarize_ratios
from tflite_adaspring.bench.trace_metrics import battery_life_hours, run_metrics
from tflite_adaspring.context import synthetic_day
from tflite_adaspring.errors import DataValidationError

SIGNATURES = [
    ModelPoint("cfg00", 0.80, 0.05, 0.20),
    ModelPoint("cfg01", 0.85, 0.10, 0.15),  # energy cheaper than cfg02 although slower than cfg00
    ModelPoint("cfg02", 0.90, 0.20, 0.40),
    ModelPoint("cfg03", 0.95, 0.40, 0.80),
]


def test_match_is_the_fastest_signature_within_half_a_point():
    baseline = ModelPoint("full", 0.904, 0.60, 1.2)
    assert iso_accuracy_match(baseline, SIGNATURES, "latency_ms").name == "cfg02"  # 0.90 >= 0.904 - 0.005
    assert iso_accuracy_match(baseline, SIGNATURES, "latency_ms", tolerance_points=0.0).name == "cfg03"
    assert iso_accuracy_match(ModelPoint("b", 0.851, 1, 1), SIGNATURES, "energy_mj").name == "cfg01"
    assert iso_accuracy_match(ModelPoint("b", 0.80, 1, 1), SIGNATURES, "energy_mj").name == "cfg01"
    assert iso_accuracy_match(ModelPoint("b", 0.80, 1, 1), SIGNATURES, "latency_ms").name == "cfg00"
    assert iso_accuracy_match(ModelPoint("b", 0.97, 1, 1), SIGNATURES, "latency_ms") is None


def test_ratios_and_summary():
    baselines = [ModelPoint("full", 0.95, 0.80, 1.6), ModelPoint("dws", 0.86, 0.30, 0.6), ModelPoint("x", 0.99, 1, 1)]
    rows = iso_accuracy_ratios(baselines, SIGNATURES, "latency_ms")
    assert [r["match"] for r in rows] == ["cfg03", "cfg02", None]
    assert rows[0]["ratio"] == pytest.approx(2.0) and rows[1]["ratio"] == pytest.approx(1.5)
    assert rows[2]["ratio"] is None and rows[2]["match_accuracy"] is None
    summary = summarize_ratios(rows)
    assert summary["max"] == pytest.approx(2.0) and summary["max_baseline"] == "full"
    assert summary["geomean"] == pytest.approx(math.sqrt(3.0)) and summary["min"] == pytest.approx(1.5)
    assert summary["matched"] == 2 and summary["unmatched"] == ["x"]
    energy = iso_accuracy_ratios(baselines[1:2], SIGNATURES, "energy_mj")
    assert energy[0]["match"] == "cfg02" and energy[0]["ratio"] == pytest.approx(1.5)
    assert summarize_ratios(rows[2:])["max"] is None


def test_bad_tables_raise_typed_errors():
    with pytest.raises(DataValidationError, match="accuracy"):
        ModelPoint("b", 1.5, 1.0, 1.0)
    with pytest.raises(DataValidationError, match="latency_ms"):
        ModelPoint("b", 0.5, 0.0, 1.0)
    with pytest.raises(DataValidationError, match="energy_mj"):
        ModelPoint("b", 0.5, 1.0, float("nan"))
    with pytest.raises(DataValidationError, match="lacks"):
        ModelPoint.from_row({"name": "b", "accuracy": 0.5})
    with pytest.raises(DataValidationError, match="metric"):
        iso_accuracy_match(SIGNATURES[0], SIGNATURES, "macs")
    with pytest.raises(DataValidationError, match="at least one"):
        iso_accuracy_ratios(SIGNATURES, [], "latency_ms")


def test_run_metrics_and_battery_life():
    m = run_metrics([1.0, 1.0, 2.0, 2.0], [0.5, 1.5, 1.9, 3.0], [0.9, 0.9, 0.8, 0.8], [2.0, 2.0, 1.0, 1.0], 0.5, 10.0)
    assert m["violations"] == 2 and m["violation_rate"] == 0.5
    assert m["mean_accuracy"] == pytest.approx(0.85) and m["mean_latency_ms"] == pytest.approx(1.725)
    assert m["energy_j"] == pytest.approx(6.0 * 10 * 0.5 / 1e3)  # sum mJ x rate x step
    assert m["inference_power_mw"] == pytest.approx(m["energy_j"] / 2.0 * 1e3)
    assert battery_life_hours(15.0, 0.5, 0.25) == pytest.approx(20.0)
    assert battery_life_hours(1.0, 0.0, 0.0) == math.inf
    with pytest.raises(DataValidationError, match="windows"):
        run_metrics([1.0], [1.0, 2.0], [0.5], [1.0], 1.0, 1.0)
    with pytest.raises(DataValidationError, match="budgets_ms"):
        run_metrics([0.0], [1.0], [0.5], [1.0], 1.0, 1.0)
    with pytest.raises(DataValidationError, match="rate_hz"):
        run_metrics([1.0], [1.0], [0.5], [1.0], 1.0, 0.0)
    with pytest.raises(DataValidationError, match="battery_wh"):
        battery_life_hours(0.0, 0.5, 0.1)


def _compare_result():
    rows = [
        {"kind": "baseline", "name": "full", "description": "full backbone", "test_accuracy": 0.95, "latency_ms": 0.8,
         "energy_mj": 1.6, "file_bytes": 1000, "gzip_bytes": 900},
        {"kind": "baseline", "name": "dws", "description": "dws", "test_accuracy": 0.86, "latency_ms": 0.3,
         "energy_mj": 0.6, "file_bytes": 500, "gzip_bytes": 400},
    ] + [
        {"kind": "adaspring", "name": s.name, "description": s.name, "config": "c", "test_accuracy": s.accuracy,
         "val_accuracy": s.accuracy, "latency_ms": s.latency_ms, "energy_mj": s.energy_mj, "weight_bytes": 100}
        for s in SIGNATURES
    ]  # fmt: skip
    return {"task": "t", "rows": rows, "energy_profile": "android_mid", "tolerance_points": 0.5}


def test_compare_headline_and_markdown():
    result = _compare_result()
    result["ratios"] = headline_ratios(result["rows"], 0.5)
    assert result["ratios"]["latency"]["summary"]["max"] == pytest.approx(2.0)
    assert result["ratios"]["energy"]["per_baseline"][1]["match"] == "cfg02"
    assert result["ratios"]["latency_fp32"] is None  # the synthetic signatures carry no precision
    fp32 = [dict(r, precision="fp32" if r["name"] == "cfg03" else "int8") for r in result["rows"]]
    only = headline_ratios(fp32, 0.5)["latency_fp32"]["per_baseline"]
    assert [r["match"] for r in only] == ["cfg03", "cfg03"] and only[1]["ratio"] == pytest.approx(0.75)
    result.update(budget={"supernet_epochs": 4, "baseline_epochs": 4, "finetune_epochs": 1}, threads=1, passes=1,
                  signatures=4, packed_file_bytes=2000,
                  evolution={"evolve_cold_p95_ms": 2.5, "packed_adapt_p99_ms": 0.03})  # fmt: skip
    text = compare_markdown(result)
    assert "| latency reduction at iso-accuracy | 2.00x (vs full) | 1.73x | 3.1x |" in text
    assert "<= 6.2 ms" in text and "| full backbone | 95.00% |" in text
    assert "| latency reduction, fp32 signatures only | no fp32 signature |" in text


def test_casestudy_simulation_on_a_tiny_trace():
    class Flags:
        rate_hz, battery_wh = 10.0, 15.4

    compare = _compare_result()
    trace = synthetic_day(duration_s=20.0, seed=1, latency_budgets_ms=(0.5, 0.2), budget_period_s=10.0,
                          burst_period_s=10.0, burst_duration_s=5.0)  # fmt: skip
    keys = ["cfg03"] * 10 + ["cfg01"] * 11
    sim = simulate(compare, trace, keys, Flags)
    assert set(sim["runs"]) == {ADAPTIVE, "full", "dws"} and len(sim["budgets_ms"]) == 21
    full = sim["runs"]["full"]["metrics"]
    assert full["violation_rate"] == 1.0  # 0.8 ms never fits 0.5 / 0.2 ms budgets
    adaptive = sim["runs"][ADAPTIVE]["metrics"]
    assert adaptive["switches"] == 1 and adaptive["configs_used"] == 2
    assert adaptive["mean_accuracy"] == pytest.approx((10 * 0.95 + 11 * 0.85) / 21)
    assert adaptive["energy_j"] == pytest.approx((10 * 0.8 + 11 * 0.15) * 10.0 * 1.0 / 1e3)
    assert adaptive["battery_life_h"] > full["battery_life_h"]  # less inference power on the same idle power
    assert adaptive["inference_only_battery_life_h"] == pytest.approx(15.4 / (adaptive["inference_power_mw"] / 1e3))
    result = {"task": "t", "settings": {"windows": 21, "step_s": 1.0, "rate_hz": 10.0, "battery_wh": 15.4},
              "budget_levels_ms": [0.5, 0.2], "energy_profile": "android_mid", "simulation": sim}  # fmt: skip
    text = markdown(result, "results/casestudy_t.png")
    assert "![case study timeline: t](results/casestudy_t.png)" in text
    assert text.index("AdaSpring adaptive runtime") < text.index("full backbone")


def test_results_page_puts_the_headline_table_first(tmp_path):
    from tflite_adaspring.bench.report import build_page

    result = _compare_result()
    result["ratios"] = headline_ratios(result["rows"], 0.5)
    result.update(evolution={"evolve_cold_p95_ms": 2.5}, paper=PAPER)
    (tmp_path / "compare_t.json").write_text(json.dumps(result))
    (tmp_path / "compare_t.md").write_text("### compare table\n")
    (tmp_path / "compare_broken.json").write_text("{")
    page = build_page(tmp_path)
    assert "| t | 2.00x (1.73x) | no match | 3.1x | 2.00x (1.73x) | 4.2x | 2.50 ms | <= 6.2 ms |" in page
    assert "| compare_broken | unreadable" in page
    assert page.index("Headline ratios") < page.index("### compare table")


def test_casestudy_rejects_missing_or_malformed_compare_results(tmp_path):
    from tflite_adaspring.bench.casestudy import load_compare
    from tflite_adaspring.errors import ModelFormatError, ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="bench compare --task har_watch"):
        load_compare(tmp_path / "compare_har_watch.json", "har_watch")
    bad = tmp_path / "bad.json"
    bad.write_text("[1")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load_compare(bad)
    bad.write_text(json.dumps({"task": "t", "rows": []}))
    with pytest.raises(ModelFormatError, match="packed_model"):
        load_compare(bad)
    bad.write_text(json.dumps({**_compare_result(), "packed_model": str(tmp_path / "gone.tflite")}))
    with pytest.raises(ModelNotFoundError, match=r"gone\.tflite"):
        load_compare(bad)
