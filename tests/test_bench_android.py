"""``adaspring bench android``: the benchmark_model output parser and the whole flow against a fake adb."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from bench_models import fc_model_with_metadata

from tflite_adaspring.bench import android, device_report
from tflite_adaspring.bench.benchmark_model_log import parse_benchmark_output
from tflite_adaspring.cli.main import main
from tflite_adaspring.errors import ConfigError, DeviceConnectionError, DeviceToolError, DeviceToolNotFoundError

DATA = Path(__file__).parent / "data"
OK = DATA / "benchmark_model_android_ok.txt"
OLD = DATA / "benchmark_model_linux_old.txt"
FAILED = DATA / "benchmark_model_failed.txt"
BAD_SIGNATURE = DATA / "benchmark_model_bad_signature.txt"
SERIAL = "R5CT90ABCDE"
PROPS = {"ro.product.model": "Pixel Test", "ro.soc.model": "Tensor G9", "ro.build.version.release": "14",
         "ro.product.cpu.abi": "arm64-v8a"}  # fmt: skip
SYSFS = "\n".join([
    "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor:schedutil",
    "/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq:1197000",
    "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq:1803000",
    "/sys/devices/system/cpu/cpu4/cpufreq/scaling_governor:performance",
    "/sys/devices/system/cpu/cpu4/cpufreq/cpuinfo_max_freq:2850000",
    "/sys/class/thermal/thermal_zone0/type:skin-therm",
    "/sys/class/thermal/thermal_zone0/temp:36500",
    "/sys/class/thermal/thermal_zone3/type:cpu-big",
    "/sys/class/thermal/thermal_zone3/temp:41",
    "/sys/devices/system/cpu/present:0-7",
    "/proc/loadavg:2.50 1.75 1.00 3/912 12345",
])  # fmt: skip

FAKE_ADB = """#!{python}
import json, re, sys
cfg = json.load(open({config!r}))
args = sys.argv[1:]
with open(cfg["log"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if cfg.get("fail_all"):
    print(cfg["fail_all"], file=sys.stderr)
    sys.exit(1)
if args[:1] == ["-s"]:
    args = args[2:]
if args[0] == "devices":
    print("List of devices attached")
    for serial, state in cfg["devices"]:
        print(serial + "\\t" + state)
    sys.exit(0)
if args[0] == "push":
    print(args[1] + ": 1 file pushed, 0 skipped.")
    sys.exit(0)
line = " ".join(args[1:])
if line.startswith("getprop "):
    print(cfg["props"].get(line.split()[1], ""))
elif line.startswith("chmod "):
    pass
elif line.startswith("grep -H "):
    print(cfg["sysfs"])
elif "benchmark_model" in line:
    key = re.search(r"--signature_to_run_for=(\\S+)", line)
    key = key.group(1) if key else "*"
    print(open(cfg["outputs"].get(key, cfg["outputs"]["*"])).read())
    sys.exit(cfg["exit"].get(key, 0))
else:
    print("fake adb: unknown command " + line, file=sys.stderr)
    sys.exit(1)
"""


# ----- the parser ------------------------------------------------------------------------------------------


def test_parser_reads_timings_phases_percentiles_and_memory() -> None:
    run = parse_benchmark_output(OK.read_text())
    assert (run.init_us, run.first_us, run.warmup_avg_us, run.inference_avg_us) == (4817, 153, 69.8, 67.25)
    assert run.warmup["count"] == 6804 and run.warmup["median"] == 66
    assert run.regular["count"] == 14270 and run.regular["median"] == 64 and run.regular["p95"] == 81
    assert (run.memory_init_mb, run.memory_overall_mb, run.peak_memory_mb) == (1.875, 2.25, 5.125)


def test_parser_handles_older_output_without_percentiles_and_scientific_numbers() -> None:
    run = parse_benchmark_output(OLD.read_text())
    assert run.regular["count"] == 3921 and run.regular["max"] == pytest.approx(1043.1)
    assert run.regular["median"] is None and run.regular["p95"] is None
    assert run.peak_memory_mb is None and run.memory_overall_mb == 3.75


def test_parser_reports_a_failed_run_with_the_tail_of_its_output() -> None:
    with pytest.raises(DeviceToolError, match="Failed to allocate tensors") as info:
        parse_benchmark_output(FAILED.read_text())
    assert "Benchmarking failed." in str(info.value)  # the tail is quoted


def test_parser_fails_on_non_zero_exit_and_on_missing_timings() -> None:
    with pytest.raises(DeviceToolError, match="exit status 139"):
        parse_benchmark_output(OK.read_text(), returncode=139)
    with pytest.raises(DeviceToolError, match="no 'Inference timings' line"):
        parse_benchmark_output("INFO: STARTING!\nSegmentation fault\n")


def test_parser_turns_a_rejected_signature_into_a_config_error_listing_the_keys() -> None:
    with pytest.raises(ConfigError, match="cfg00, cfg01, cfg02"):
        parse_benchmark_output(BAD_SIGNATURE.read_text(), returncode=1)


# ----- choosing the device ------------------------------------------------------------------------------------


def test_device_listing_and_choice() -> None:
    listing = "* daemon started successfully\nList of devices attached\nAAA\tdevice\nBBB\tunauthorized\n\n"
    devices = android.parse_devices(listing)
    assert devices == [("AAA", "device"), ("BBB", "unauthorized")]
    assert android.choose_device(devices, None) == "AAA"
    assert android.choose_device(devices, "AAA") == "AAA"
    with pytest.raises(DeviceConnectionError, match="Allow USB debugging"):
        android.choose_device(devices, "BBB")
    with pytest.raises(DeviceConnectionError, match="not attached"):
        android.choose_device(devices, "CCC")
    with pytest.raises(DeviceConnectionError, match="no Android device"):
        android.choose_device([], None)
    with pytest.raises(DeviceConnectionError, match="offline"):
        android.choose_device([("X", "offline")], None)
    with pytest.raises(DeviceConnectionError, match="pass --serial"):
        android.choose_device([("X", "device"), ("Y", "device")], None)


# ----- the whole flow against a fake adb -------------------------------------------------------------------


@pytest.fixture()
def setup(tmp_path: Path) -> dict:
    model = tmp_path / "toy.tflite"
    model.write_bytes(fc_model_with_metadata((8, 64, 256)))
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF fake android binary")
    config = {"log": str(tmp_path / "adb_log.jsonl"), "devices": [[SERIAL, "device"]], "props": PROPS,
              "sysfs": SYSFS, "outputs": {"*": str(OK), "cfg01": str(OLD)}, "exit": {}}  # fmt: skip
    config_path = tmp_path / "adb_config.json"
    config_path.write_text(json.dumps(config))
    adb = tmp_path / "adb"
    adb.write_text(FAKE_ADB.format(python=sys.executable, config=str(config_path)))
    adb.chmod(adb.stat().st_mode | stat.S_IXUSR)
    return {"model": model, "binary": binary, "adb": adb, "config": config, "config_path": config_path,
            "json": tmp_path / "out" / "android.json", "log": Path(config["log"])}  # fmt: skip


def _argv(s: dict, *extra: str) -> list[str]:
    return ["adaspring", "bench", "android", f"--model={s['model']}", f"--adb={s['adb']}",
            f"--benchmark_binary={s['binary']}", f"--json={s['json']}", *extra]  # fmt: skip


def _configure(s: dict, **changes: object) -> None:
    s["config"].update(changes)
    s["config_path"].write_text(json.dumps(s["config"]))


def _commands(s: dict) -> list[list[str]]:
    if not s["log"].exists():
        return []
    return [json.loads(line) for line in s["log"].read_text().splitlines()]


def test_full_flow_issues_the_expected_commands_and_writes_the_shared_layout(setup: dict) -> None:
    assert main(_argv(setup, "--threads=1,4")) == 0
    commands = _commands(setup)
    assert commands[0] == ["devices"]
    assert all(c[:2] == ["-s", SERIAL] for c in commands[1:])
    pushes = [c[2:] for c in commands if c[2:3] == ["push"]]
    assert pushes == [["push", str(setup["model"]), "/data/local/tmp/toy.tflite"],
                      ["push", str(setup["binary"]), "/data/local/tmp/benchmark_model"]]  # fmt: skip
    shells = [c[3] for c in commands if c[2:3] == ["shell"]]
    assert "chmod 755 /data/local/tmp/benchmark_model" in shells
    assert [s.split()[1] for s in shells if s.startswith("getprop")] == list(android.PROPS.values())
    runs = [s for s in shells if s.startswith("/data/local/tmp/benchmark_model ")]
    expected = [(f"--signature_to_run_for=cfg{i:02d}", f"--num_threads={t}") for i in range(3) for t in (1, 4)]
    assert [(r.split()[2], r.split()[3]) for r in runs] == expected
    assert all("--graph=/data/local/tmp/toy.tflite" in r and "--use_xnnpack=true" in r for r in runs)

    result = json.loads(setup["json"].read_text())
    device_report.validate(result)
    assert setup["json"].with_suffix(".md").exists()
    assert result["harness"] == "android-benchmark_model" and result["settings"]["serial"] == SERIAL
    d = result["device"]
    assert (d["model"], d["soc"], d["os"], d["abi"], d["cores"]) == ("Pixel Test", "Tensor G9", "Android 14",
                                                                     "arm64-v8a", 8)  # fmt: skip
    assert [(c["cpu"], c["governor"], c["max_mhz"]) for c in d["cpus"]] == [(0, "schedutil", 1803.0),
                                                                            (4, "performance", 2850.0)]  # fmt: skip
    temps = result["conditions"]["start"]["temperatures"]
    assert [(t["type"], t["celsius"]) for t in temps] == [("skin-therm", 36.5), ("cpu-big", 41.0)]
    assert result["conditions"]["end"]["load_average"] == [2.5, 1.75, 1.0]
    sigs = {s["key"]: s for s in result["signatures"]}
    assert list(sigs) == ["cfg00", "cfg01", "cfg02"] and sigs["cfg01"]["config_id"] == "w64"
    first = sigs["cfg00"]["by_threads"][0]
    assert [e["threads"] for e in sigs["cfg00"]["by_threads"]] == [1, 4]
    assert first["init_ms"] == pytest.approx(4.817) and first["first_invoke_ms"] == pytest.approx(0.153)
    assert first["warmup"] == {"count": 6804, "mean_ms": pytest.approx(0.0698)}
    assert first["steady"]["median_ms"] == pytest.approx(0.064) and first["steady"]["p90_ms"] is None
    assert first["memory_mb"] == {"init": 1.875, "overall": 2.25}
    old = sigs["cfg01"]["by_threads"][1]["steady"]
    assert old["median_ms"] is None and old["mean_ms"] == pytest.approx(0.2549) and old["count"] == 3921


def test_a_failed_run_stops_with_the_tail_of_its_output(setup: dict, capsys: pytest.CaptureFixture) -> None:
    _configure(setup, outputs={"*": str(OK), "cfg02": str(FAILED)}, exit={"cfg02": 1})
    assert main(_argv(setup, "--threads=1")) == 1
    err = capsys.readouterr().err
    assert "--signature_to_run_for=cfg02" in err and "Failed to allocate tensors!" in err
    assert not setup["json"].exists()


def test_a_signature_rejected_by_the_tool_is_a_config_error(setup: dict) -> None:
    _configure(setup, outputs={"*": str(BAD_SIGNATURE)}, exit={"*": 1})
    with pytest.raises(ConfigError, match="cfg00, cfg01, cfg02"):
        android.measure(_flags(setup))


def test_unknown_requested_signature_fails_before_touching_the_device(setup: dict) -> None:
    with pytest.raises(ConfigError, match="cfg07"):
        android.measure(_flags(setup, "--signatures=cfg00,cfg07"))
    assert _commands(setup) == []


def test_missing_adb_and_missing_binary(setup: dict) -> None:
    with pytest.raises(DeviceToolNotFoundError, match="adb not found"):
        android.measure(_flags(setup, f"--adb={setup['adb'].parent / 'no-adb'}"))
    with pytest.raises(DeviceToolNotFoundError, match="benchmark_model binary not found"):
        android.measure(_flags(setup, f"--benchmark_binary={setup['binary'].parent / 'missing'}"))


def test_no_device_unauthorized_and_adb_errors(setup: dict) -> None:
    _configure(setup, devices=[])
    with pytest.raises(DeviceConnectionError, match="no Android device"):
        android.measure(_flags(setup))
    _configure(setup, devices=[[SERIAL, "unauthorized"]])
    with pytest.raises(DeviceConnectionError, match="unauthorized"):
        android.measure(_flags(setup))
    _configure(setup, fail_all="adb: device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set")
    with pytest.raises(DeviceConnectionError, match="device unauthorized"):
        android.measure(_flags(setup))


def _flags(s: dict, *extra: str):
    fv = android.FLAGS
    fv.unparse_flags()
    fv(["android", *_argv(s, *extra)[3:]])
    return fv
