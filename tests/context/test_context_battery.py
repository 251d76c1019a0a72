"""BatterySource on fake /sys/class/power_supply trees."""

from __future__ import annotations

import pytest

from tflite_adaspring.context.battery import BatterySource

PS = "sys/class/power_supply"


def _battery(name="BAT0", capacity="57", status="Discharging", **extra):
    files = {
        f"{PS}/{name}/type": "Battery\n",
        f"{PS}/{name}/capacity": f"{capacity}\n",
        f"{PS}/{name}/status": f"{status}\n",
    }
    files.update({f"{PS}/{name}/{k}": v for k, v in extra.items()})
    return files


def _supply(name, kind, online):
    return {f"{PS}/{name}/type": f"{kind}\n", f"{PS}/{name}/online": f"{online}\n"}


def test_laptop_on_battery(tree):
    root = tree({**_battery(), **_supply("AC", "Mains", 0)})
    assert BatterySource(root).read(0.0) == {"battery_percent": 57.0, "charging": False}


def test_charger_online_means_charging(tree):
    root = tree({**_battery(status="Discharging"), **_supply("AC", "Mains", 0), **_supply("usb", "USB", 1)})
    assert BatterySource(root).read(0.0)["charging"] is True


@pytest.mark.parametrize(
    ("status", "expected"),
    [("Charging", True), ("Full", True), ("Not charging", True), ("Discharging", False), ("Unknown", None)],
)
def test_status_decides_when_no_supply_has_online(tree, status, expected):
    root = tree(_battery(status=status))
    assert BatterySource(root).read(0.0)["charging"] is expected


def test_mean_of_system_batteries_and_device_batteries_skipped(tree):
    root = tree(
        {
            **_battery("BAT0", 40),
            **_battery("BAT1", 60),
            **_battery("hid-mouse-battery", 5, scope="Device\n"),
        }
    )
    assert BatterySource(root).read(0.0)["battery_percent"] == 50.0


def test_no_power_supply_folder_is_unknown(tmp_path):
    assert BatterySource(tmp_path).read(0.0) == {"battery_percent": None, "charging": None}


def test_supply_without_type_is_ignored(tree):
    root = tree({f"{PS}/weird/online": "1\n"})
    assert BatterySource(root).read(0.0) == {"battery_percent": None, "charging": None}


@pytest.mark.parametrize("capacity", ["abc", "150", "-1", ""])
def test_garbage_capacity_is_unknown(tree, capacity):
    root = tree(_battery(capacity=capacity))
    assert BatterySource(root).read(0.0)["battery_percent"] is None


def test_garbage_status_and_online_are_unknown(tree):
    root = tree({**_battery(status="\xff"), **_supply("AC", "Mains", "yes")})
    root.joinpath(PS, "BAT0", "status").write_bytes(b"\xff\xfe")
    assert BatterySource(root).read(0.0) == {"battery_percent": 57.0, "charging": None}


def test_values_follow_file_changes_and_new_chargers_after_rescan(tree):
    root = tree(_battery(capacity=80))
    source = BatterySource(root, keep_open=True, rescan_s=10.0)
    assert source.read(0.0) == {"battery_percent": 80.0, "charging": False}
    tree({f"{PS}/BAT0/capacity": "79\n"})
    assert source.read(1.0)["battery_percent"] == 79.0
    tree(_supply("AC", "Mains", 1))
    assert source.read(2.0)["charging"] is False  # not discovered yet
    assert source.read(10.0)["charging"] is True
    source.close()


def test_battery_removed_at_runtime_is_unknown(tree):
    root = tree(_battery())
    source = BatterySource(root)
    assert source.read(0.0)["battery_percent"] == 57.0
    (root / PS / "BAT0" / "capacity").unlink()
    assert source.read(1.0)["battery_percent"] is None
