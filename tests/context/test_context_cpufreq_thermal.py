"""CpuFreqThermalSource on fake cpufreq / thermal trees."""

from __future__ import annotations

import os

import pytest

from tflite_adaspring.context.cpufreq_thermal import CpuFreqThermalSource, millicelsius_to_celsius

CPU = "sys/devices/system/cpu"
TZ = "sys/class/thermal"


def _cpufreq(cpu: int, cur: int, max_khz: int = 2_400_000, cap: int | None = None) -> dict[str, str]:
    d = f"{CPU}/cpu{cpu}/cpufreq"
    return {
        f"{d}/scaling_cur_freq": f"{cur}\n",
        f"{d}/cpuinfo_max_freq": f"{max_khz}\n",
        f"{d}/scaling_max_freq": f"{cap if cap is not None else max_khz}\n",
    }


def _zone(n: int, temp: str, trips: tuple[tuple[str, int], ...] = ()) -> dict[str, str]:
    d = f"{TZ}/thermal_zone{n}"
    files = {f"{d}/temp": f"{temp}\n", f"{d}/type": "cpu-thermal\n"}
    for i, (kind, trip_temp) in enumerate(trips):
        files[f"{d}/trip_point_{i}_type"] = f"{kind}\n"
        files[f"{d}/trip_point_{i}_temp"] = f"{trip_temp}\n"
    return files


UNKNOWN = {"cpu_freq_ratio": None, "cpu_freq_cap_ratio": None, "throttled": None, "temperature_c": None}


def test_frequency_ratio_and_no_throttling(tree):
    root = tree({**_cpufreq(0, 1_200_000), **_cpufreq(1, 2_400_000)})
    assert CpuFreqThermalSource(root).read(0.0) == {
        "cpu_freq_ratio": 0.75,
        "cpu_freq_cap_ratio": 1.0,
        "throttled": False,
        "temperature_c": None,
    }


def test_lowered_frequency_cap_is_throttling(tree):
    root = tree({**_cpufreq(0, 1_000_000, cap=1_500_000), **_cpufreq(1, 1_000_000)})  # 1.5 < 0.8 * 2.4 GHz
    values = CpuFreqThermalSource(root).read(0.0)
    assert values["throttled"] is True  # one capped policy is enough, even though the mean cap is 0.81
    assert values["cpu_freq_cap_ratio"] == pytest.approx((1.5 / 2.4 + 1.0) / 2)
    tree(_cpufreq(0, 1_000_000, cap=2_000_000))  # 2.0 >= 1.92: mild cap, not counted
    assert CpuFreqThermalSource(root).read(0.0)["throttled"] is False
    assert CpuFreqThermalSource(root, cap_ratio=0.9).read(0.0)["throttled"] is True


def test_shared_policy_counts_once_per_cpu(tree):
    policy0 = f"{CPU}/cpufreq/policy0"
    root = tree(
        {
            f"{policy0}/scaling_cur_freq": "1000000\n",
            f"{policy0}/cpuinfo_max_freq": "2000000\n",
            f"{policy0}/scaling_max_freq": "2000000\n",
            **_cpufreq(2, 3_000_000, max_khz=3_000_000),
        }
    )
    for cpu in (0, 1):
        (root / CPU / f"cpu{cpu}").mkdir(parents=True)
        os.symlink(root / policy0, root / CPU / f"cpu{cpu}" / "cpufreq")
    values = CpuFreqThermalSource(root).read(0.0)
    assert values["cpu_freq_ratio"] == pytest.approx((2 * 0.5 + 1 * 1.0) / 3)
    assert values["cpu_freq_cap_ratio"] == 1.0


def test_hottest_zone_and_passive_trip(tree):
    root = tree(
        {
            **_zone(0, "45000", (("critical", 105000), ("passive", 80000))),
            **_zone(1, "52000", (("critical", 100000),)),
        }
    )
    source = CpuFreqThermalSource(root)
    assert source.read(0.0) == {**UNKNOWN, "throttled": False, "temperature_c": 52.0}
    tree(_zone(0, "81000", (("critical", 105000), ("passive", 80000))))
    assert source.read(1.0) == {**UNKNOWN, "throttled": True, "temperature_c": 81.0}


def test_zone_without_throttle_trip_gives_no_throttle_signal(tree):
    root = tree(_zone(0, "99000", (("critical", 100000),)))
    assert CpuFreqThermalSource(root).read(0.0) == {**UNKNOWN, "temperature_c": 99.0}


def test_zone_in_whole_degrees_and_bogus_sensors(tree):
    root = tree({**_zone(0, "47"), **_zone(1, "-273000"), **_zone(2, "garbage"), **_zone(10, "30000")})
    assert CpuFreqThermalSource(root).read(0.0)["temperature_c"] == 47.0


@pytest.mark.parametrize(
    ("raw", "celsius"), [(45000, 45.0), (47, 47.0), (-5000, -5.0), (500000, None), (-273000, None)]
)
def test_millicelsius_to_celsius(raw, celsius):
    assert millicelsius_to_celsius(raw) == celsius


def test_throttle_counter_growth(tree):
    counter = f"{CPU}/cpu0/thermal_throttle/core_throttle_count"
    root = tree({counter: "5\n"})
    source = CpuFreqThermalSource(root, keep_open=True)
    assert source.read(0.0)["throttled"] is None  # no baseline yet
    assert source.read(1.0)["throttled"] is False
    tree({counter: "6\n"})
    assert source.read(2.0)["throttled"] is True
    assert source.read(3.0)["throttled"] is False
    source.close()


def test_garbage_frequency_files(tree):
    root = tree({**_cpufreq(0, 1_000_000), f"{CPU}/cpu0/cpufreq/scaling_cur_freq": "fast\n"})
    values = CpuFreqThermalSource(root).read(0.0)
    assert values["cpu_freq_ratio"] is None and values["cpu_freq_cap_ratio"] == 1.0 and values["throttled"] is False
    tree({f"{CPU}/cpu0/cpufreq/cpuinfo_max_freq": "0\n"})  # unusable policy: skipped entirely
    assert CpuFreqThermalSource(root).read(0.0) == UNKNOWN


def test_empty_root_and_this_machine_do_not_raise(tmp_path):
    assert CpuFreqThermalSource(tmp_path).read(0.0) == UNKNOWN
    values = CpuFreqThermalSource("/").read(0.0)  # this machine has no cpufreq or thermal zones: None is fine
    assert set(values) == set(UNKNOWN)


def test_bad_cap_ratio(tmp_path):
    with pytest.raises(ValueError, match="cap_ratio"):
        CpuFreqThermalSource(tmp_path, cap_ratio=1.5)
