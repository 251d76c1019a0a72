"""``adaspring bench device``: quick run on this machine, fake /proc and /sys trees, layout, probes, no TensorFlow."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench_models import IN_FEATURES, fc_model, fc_model_with_metadata, fc_spec

from tflite_adaspring.bench import device, device_report
from tflite_adaspring.bench.lut_probes import FitProbe, LutProbes, read_lut_probes
from tflite_adaspring.cli.main import main
from tflite_adaspring.errors import (
    ConfigError,
    DataValidationError,
    ModelFormatError,
    ModelNotFoundError,
    SchemaVersionError,
)
from tflite_adaspring.profiling.lut import LatencyLUT

WIDTHS = (8, 64, 256)


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = tmp_path / "toy.tflite"
    path.write_bytes(fc_model_with_metadata(WIDTHS))
    return path


def _probes(widths: tuple[int, ...] = WIDTHS) -> LutProbes:
    specs = {fc_spec(w).key: fc_spec(w) for w in widths}
    fits = tuple(FitProbe(f"cfg{i:02d}", f"w{w}", "float32", (fc_spec(w).key,)) for i, w in enumerate(widths))
    return LutProbes({"name": "toy_cnn", "version": 1}, ("fp32",), specs, fits, {}, fc_model(widths))


def _fake_root(root: Path) -> Path:
    """A Raspberry Pi 4 as its kernel files show it."""
    files = {
        "proc/device-tree/model": "Raspberry Pi 4 Model B Rev 1.4\x00",
        "proc/cpuinfo": "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\n"
        "Model\t\t: Raspberry Pi 4 Model B\n",
        "proc/loadavg": "0.50 0.40 0.30 1/200 999\n",
        "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n',
        "sys/class/thermal/thermal_zone0/type": "cpu-thermal\n",
        "sys/class/thermal/thermal_zone0/temp": "47850\n",
        "sys/class/thermal/thermal_zone1/type": "broken\n",
        "sys/class/thermal/thermal_zone1/temp": "not a number\n",
    }
    for cpu in range(4):
        base = f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        files[f"{base}/scaling_governor"] = "ondemand\n"
        files[f"{base}/scaling_cur_freq"] = f"{600000 + cpu * 100000}\n"
        files[f"{base}/cpuinfo_max_freq"] = "1800000\n"
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    (root / "sys/devices/system/cpu/cpu3/cpufreq/scaling_max_freq").mkdir()  # unreadable as a file
    return root


def test_quick_run_on_this_machine(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "res" / "device.json"
    started = time.monotonic()
    assert main(["adaspring", "bench", "device", f"--model={model}", f"--json={out}", "--quick"]) == 0
    assert time.monotonic() - started < 10
    result = json.loads(out.read_text())
    device_report.validate(result)
    assert out.with_suffix(".md").read_text().count("| cfg0") == 3
    assert result["harness"] == "litert-python" and result["settings"]["threads"] == [1]
    assert result["model"]["adaspring"]["task"] == "toy" and result["model"]["file_bytes"] == model.stat().st_size
    assert result["device"]["python"] == f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    assert result["device"]["litert_version"]
    assert [(s["key"], s["config_id"]) for s in result["signatures"]] == [("cfg00", "w8"), ("cfg01", "w64"),
                                                                          ("cfg02", "w256")]  # fmt: skip
    assert result["signatures"][0]["inputs"] == [{"name": "x", "shape": [1, IN_FEATURES], "dtype": "float32"}]
    for sig in result["signatures"]:
        (entry,) = sig["by_threads"]
        assert entry["threads"] == 1 and entry["first_invoke_ms"] > 0 and entry["init_ms"] > 0
        assert entry["warmup"]["count"] == device.QUICK["warmup"] and entry["warmup"]["mean_ms"] > 0
        steady = entry["steady"]
        assert steady["count"] == device.QUICK["rounds"] * device.QUICK["invokes"]
        assert len(steady["round_medians_ms"]) == device.QUICK["rounds"]
        assert 0 < steady["min_ms"] <= steady["median_ms"] <= steady["p90_ms"] <= steady["p95_ms"] <= steady["max_ms"]
    assert result["lut"] is None and "--lut_probes" in result["lut_status"]


def test_several_thread_counts_and_a_subset_of_signatures(model: Path, tmp_path: Path) -> None:
    fv = _flags(model, tmp_path, "--threads=1,2", "--signatures=cfg02", "--warmup=2", "--rounds=1", "--invokes=5")
    result = device.measure(fv)
    (sig,) = result["signatures"]
    assert sig["key"] == "cfg02" and [e["threads"] for e in sig["by_threads"]] == [1, 2]
    assert sig["by_threads"][0]["memory_mb"]["init"] is not None and sig["by_threads"][1]["memory_mb"] is None
    assert sig["by_threads"][1]["steady"]["count"] == 5


def test_model_without_signatures_or_metadata(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(fc_model(WIDTHS, signatures=False))
    result = device.measure(_flags(plain, tmp_path, "--quick"))
    (sig,) = result["signatures"]
    assert sig["key"] is None and sig["config_id"] is None and result["model"]["adaspring"] is None
    assert sig["by_threads"][0]["steady"]["median_ms"] > 0


def test_fake_raspberry_pi_tree(tmp_path: Path) -> None:
    info, now = device.linux_device(str(_fake_root(tmp_path / "root")))
    assert info["model"] == "Raspberry Pi 4 Model B Rev 1.4" and info["model_source"] == "/proc/device-tree/model"
    assert info["soc"] == "BCM2835" and info["os"] == "Debian GNU/Linux 12 (bookworm)"
    assert [c["governor"] for c in info["cpus"]] == ["ondemand"] * 4
    assert [c["cur_mhz"] for c in info["cpus"]] == [600.0, 700.0, 800.0, 900.0]
    assert info["cpus"][3]["max_mhz"] == 1800.0 and info["cpus"][3]["scaling_max_mhz"] is None
    assert now["temperatures"] == [{"zone": 0, "type": "cpu-thermal", "celsius": pytest.approx(47.85)}]
    assert now["load_average"] == [0.5, 0.4, 0.3]


def test_cpuinfo_model_is_used_when_there_is_no_device_tree(tmp_path: Path) -> None:
    root = _fake_root(tmp_path / "root")
    (root / "proc/device-tree/model").unlink()
    info, _ = device.linux_device(str(root))
    assert (info["model"], info["model_source"]) == ("Raspberry Pi 4 Model B", "/proc/cpuinfo Model")


def test_empty_root_gives_nulls_and_the_run_still_works(model: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    info, now = device.linux_device(str(empty))
    assert info["model"] is None and info["os"] is None and info["soc"] is None and info["cpus"] == []
    assert now == {"temperatures": [], "cpu_cur_mhz": [], "load_average": None}
    result = device.measure(_flags(model, tmp_path, "--quick", f"--root={empty}"))
    device_report.validate(result)
    assert result["device"]["model"] is None and result["conditions"]["end"]["temperatures"] == []


def test_missing_corrupt_model_and_unknown_signature(model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not found"):
        device.measure(_flags(tmp_path / "nope.tflite", tmp_path, "--quick"))
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(model.read_bytes()[:200])
    with pytest.raises(ModelFormatError):
        device.measure(_flags(truncated, tmp_path, "--quick"))
    text = tmp_path / "notes.tflite"
    text.write_text("this is not a model")
    with pytest.raises(ModelFormatError, match="TFL3"):
        device.measure(_flags(text, tmp_path, "--quick"))
    with pytest.raises(ConfigError, match="cfg00, cfg01, cfg02"):
        device.measure(_flags(model, tmp_path, "--quick", "--signatures=cfg09"))


def test_layout_validation_names_the_bad_field(model: Path, tmp_path: Path) -> None:
    result = device.measure(_flags(model, tmp_path, "--quick"))
    for mutate, field in [
        (lambda r: r["device"].pop("cores"), "device lacks cores"),
        (lambda r: r["signatures"][1]["by_threads"][0]["steady"].update(median_ms="fast"), "median_ms"),
        (lambda r: r["signatures"][0].update(by_threads=[]), "by_threads is empty"),
        (lambda r: r["settings"].update(quick=1), "settings.quick"),
        (lambda r: r["conditions"].pop("end"), "conditions.end"),
    ]:
        broken = copy.deepcopy(result)
        mutate(broken)
        with pytest.raises(DataValidationError, match=field):
            device_report.validate(broken)


def test_latency_table_from_a_probe_file(model: Path, tmp_path: Path) -> None:
    probes = tmp_path / "probes.tflite"
    probes.write_bytes(_probes().to_bytes())
    read = read_lut_probes(probes)
    assert set(read.specs) == {fc_spec(w).key for w in WIDTHS} and read.plan("w64") == [fc_spec(64)]
    out = tmp_path / "dev.json"
    assert main(["adaspring", "bench", "device", f"--model={model}", f"--json={out}", "--quick",
                 f"--lut_probes={probes}"]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    lut = result["lut"]
    assert lut["operators"] == 3 and lut["threads"] == [1] and "all" in lut["fits"]["1"]
    assert [c["config_id"] for c in lut["predicted_vs_measured"]] == ["w8", "w64", "w256"]
    assert all(c["predicted_ms"] > 0 for c in lut["predicted_vs_measured"])
    assert list(lut["median_abs_error_pct_by_threads"]) == ["1"] and lut["median_abs_error_pct"] >= 0
    assert "median |error|" in out.with_suffix(".md").read_text()
    table = LatencyLUT.load(lut["path"])
    assert Path(lut["path"]) == tmp_path / "dev_lut.json" and table.threads == (1,)
    assert table.predict_plan([fc_spec(256)], 1).predicted_ms > 0


def test_probe_file_errors(model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="lut_probes"):
        read_lut_probes(tmp_path / "missing.tflite")
    with pytest.raises(ModelFormatError, match="not a latency-table probe file"):
        read_lut_probes(model)
    newer = _probes()
    payload = newer.to_json() | {"schema_version": 99}
    from tflite_adaspring.bench.lut_probes import METADATA_ENTRY
    from tflite_adaspring.metadata import write_metadata_entry

    bad = tmp_path / "newer.tflite"
    bad.write_bytes(write_metadata_entry(newer.model_bytes, METADATA_ENTRY, json.dumps(payload).encode()))
    with pytest.raises(SchemaVersionError):
        read_lut_probes(bad)
    unlisted = newer.to_json()
    unlisted["ops"] = unlisted["ops"][:1]
    bad.write_bytes(write_metadata_entry(newer.model_bytes, METADATA_ENTRY, json.dumps(unlisted).encode()))
    with pytest.raises(ModelFormatError, match="unlisted operators"):
        read_lut_probes(bad)


def test_device_benchmark_never_imports_tensorflow(model: Path, tmp_path: Path) -> None:
    probes = tmp_path / "probes.tflite"
    probes.write_bytes(_probes().to_bytes())
    code = (
        "import sys\n"
        "from tflite_adaspring.cli.main import main\n"
        f"rc = main(['adaspring', 'bench', 'device', '--model={model}', '--json={tmp_path / 'sub.json'}', "
        f"'--quick', '--lut_probes={probes}'])\n"
        "assert rc == 0, rc\n"
        "import tflite_adaspring.bench.android, tflite_adaspring.bench.lut_probes\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras'))\n"
        "assert not heavy, heavy\n"
        "print('NO-TF-OK')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "NO-TF-OK" in done.stdout and (tmp_path / "sub_lut.json").exists()


def _flags(model: Path, tmp_path: Path, *extra: str):
    fv = device.FLAGS
    fv.unparse_flags()
    fv(["device", f"--model={model}", f"--json={tmp_path / 'out.json'}", *extra])
    return fv
