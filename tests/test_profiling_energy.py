"""Energy: bundled device profiles (with sources), modeled arithmetic, RAPL and battery sensors on fake sysfs trees."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tflite_adaspring.errors import ModelFormatError
from tflite_adaspring.profiling import energy


def test_bundled_profiles_state_sources_and_cover_the_three_devices() -> None:
    profiles = {p.name: p for p in energy.bundled_profiles()}
    assert {"x86_server_core", "raspberry_pi4", "android_mid"} <= set(profiles)
    for p in profiles.values():
        assert p.sources and all(s["ref"] and s["what"] for s in p.sources)
        assert p.active_power_w_per_thread > 0 and p.latency_scale > 0 and p.confidence


def test_modeled_energy_is_power_times_latency_times_scale_and_labelled() -> None:
    pi = energy.load_profile("raspberry_pi4")
    e = pi.modeled_energy(0.2, threads=2)
    assert e.kind == "modeled"
    assert e.value == pytest.approx(0.93 * 2 * 0.2 * 5.0)
    table = energy.modeled_energy_table(1.0)
    assert set(table) >= {"x86_server_core", "raspberry_pi4", "android_mid"}
    assert all(v.kind == "modeled" for v in table.values())


def test_profile_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="raspberry_pi4"):
        energy.load_profile("no_such_device")
    bad = tmp_path / "bad.json"
    obj = json.loads((energy.DEVICES_DIR / "raspberry_pi4.json").read_text())
    bad.write_text(json.dumps({**obj, "sources": []}))
    with pytest.raises(ModelFormatError, match="source"):
        energy.load_profile(bad)
    del obj["latency_scale"]
    bad.write_text(json.dumps(obj))
    with pytest.raises(ModelFormatError, match="latency_scale"):
        energy.load_profile(bad)


def _write(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value)


def test_no_sensor_on_a_host_without_powercap_or_battery(tmp_path: Path) -> None:
    _write(tmp_path / "class" / "power_supply" / "AC" / "type", "Mains\n")
    assert energy.find_sensor(tmp_path) is None


def test_rapl_energy_per_call_handles_counter_wrap(tmp_path: Path) -> None:
    zone = tmp_path / "class" / "powercap" / "intel-rapl:0"
    _write(zone / "energy_uj", "999000\n")
    _write(zone / "max_energy_range_uj", "1000000\n")
    _write(tmp_path / "class" / "powercap" / "intel-rapl:0:0" / "energy_uj", "5\n")  # a sub-zone: not summed
    sensor = energy.find_sensor(tmp_path)
    assert isinstance(sensor, energy.RaplSensor) and sensor.zones == [zone]
    counter = {"uj": 999000}

    def call() -> None:  # each call "consumes" 300 uJ; the counter wraps at 1e6
        counter["uj"] = (counter["uj"] + 300) % 1_000_000
        (zone / "energy_uj").write_text(f"{counter['uj']}\n")

    e = energy.measure_energy(call, runs=10, sensor=sensor, subtract_idle=True)
    assert e.kind == "measured"
    assert e.value == pytest.approx(0.3)  # mJ per call; the idle period adds nothing


def test_battery_power_is_integrated_over_the_calls(tmp_path: Path) -> None:
    supply = tmp_path / "class" / "power_supply" / "BAT0"
    _write(supply / "type", "Battery\n")
    _write(supply / "voltage_now", "4000000\n")  # 4 V
    _write(supply / "current_now", "-500000\n")  # 0.5 A discharging -> 2 W
    sensor = energy.find_sensor(tmp_path)
    assert isinstance(sensor, energy.BatterySensor)
    assert sensor.power_w() == pytest.approx(2.0)
    e = energy.measure_energy(lambda: time.sleep(0.01), runs=5, sensor=sensor, subtract_idle=False)
    assert e.kind == "measured"
    assert 0.6 * 20 < e.value < 3.0 * 20  # ~2 W x 10 ms = 20 mJ per call (sleep overshoots)
    with_idle = energy.measure_energy(lambda: time.sleep(0.01), runs=5, sensor=sensor, subtract_idle=True)
    assert with_idle.value < 0.5 * e.value  # constant power: nothing above idle
