"""CpuLoadSource: /proc/stat utilisation, run-queue contention, cgroup/affinity cores."""

from __future__ import annotations

import pytest

from tflite_adaspring.context.cpu_load import CpuLoadSource, cgroup_cpu_limit, contention_factor, parse_cpu_list

STAT_1 = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\nintr 1 2 3\n"
# +60 user, +20 system, +100 idle, +10 iowait, +5 softirq, +5 steal: total +200, idle+iowait +110
STAT_2 = "cpu  160 0 70 900 60 0 5 5 0 0\ncpu0 80 0 35 450 30 0 3 3 0 0\nintr 1 2 3\n"
ONLINE = {"sys/devices/system/cpu/online": "0-1\n"}


def test_utilisation_from_two_reads_by_hand(tree):
    root = tree({"proc/stat": STAT_1, **ONLINE})
    source = CpuLoadSource(root)
    assert source.read(0.0)["cpu_utilization"] is None  # no window yet
    tree({"proc/stat": STAT_2})
    assert source.read(1.0)["cpu_utilization"] == pytest.approx((200 - 110) / 200)  # 0.45


def test_short_window_keeps_previous_value_and_extends(tree):
    root = tree({"proc/stat": STAT_1})
    source = CpuLoadSource(root, min_window_ticks=50)
    source.read(0.0)
    tree({"proc/stat": "cpu  110 0 50 820 50 0 0 0\n"})  # 30 ticks < 50: too short
    assert source.read(0.1)["cpu_utilization"] is None
    tree({"proc/stat": "cpu  140 0 50 840 50 0 0 0\n"})  # 80 ticks since the first read, 40 busy
    assert source.read(0.2)["cpu_utilization"] == pytest.approx(0.5)
    tree({"proc/stat": "cpu  141 0 50 840 50 0 0 0\n"})
    assert source.read(0.3)["cpu_utilization"] == pytest.approx(0.5)


def test_counter_reset_restarts_the_window(tree):
    root = tree({"proc/stat": STAT_2})
    source = CpuLoadSource(root, min_window_ticks=1)
    source.read(0.0)
    tree({"proc/stat": STAT_1})
    assert source.read(1.0)["cpu_utilization"] is None
    tree({"proc/stat": STAT_2})
    assert source.read(2.0)["cpu_utilization"] == pytest.approx(0.45)


@pytest.mark.parametrize("stat", ["", "cpu a b c d e\n", "intr 1 2\n", "cpu 1 2\n", "cpu -1 0 0 0 0\n"])
def test_garbage_stat_is_unknown(tree, stat):
    root = tree({"proc/stat": stat, **ONLINE})
    source = CpuLoadSource(root)
    source.read(0.0)
    assert source.read(1.0)["cpu_utilization"] is None


def test_contention_from_loadavg(tree):
    root = tree({"proc/loadavg": "2.10 1.00 0.50 4/321 9999\n", **ONLINE})
    values = CpuLoadSource(root, alpha=1.0).read(0.0)
    assert values["cpu_runnable_others"] == 3.0  # 4 running minus the reader
    assert values["cpu_contention"] == pytest.approx((3 + 1) / 2)


def test_runnable_others_are_smoothed(tree):
    root = tree({"proc/loadavg": "0 0 0 4/100 1\n", **ONLINE})
    source = CpuLoadSource(root, alpha=0.5)
    assert source.read(0.0)["cpu_runnable_others"] == 3.0
    tree({"proc/loadavg": "0 0 0 1/100 1\n"})
    values = source.read(1.0)
    assert values["cpu_runnable_others"] == pytest.approx(1.5)  # 3 + 0.5 * (0 - 3)
    assert values["cpu_contention"] == pytest.approx(1.25)


@pytest.mark.parametrize("loadavg", ["", "0 0 0\n", "0 0 0 x/1 2\n", "0 0 0 -2/5 1\n"])
def test_garbage_loadavg_is_unknown(tree, loadavg):
    root = tree({"proc/loadavg": loadavg, **ONLINE})
    values = CpuLoadSource(root).read(0.0)
    assert values["cpu_runnable_others"] is None and values["cpu_contention"] is None


def test_contention_unknown_without_online_cores(tree):
    root = tree({"proc/loadavg": "0 0 0 3/10 1\n"})
    values = CpuLoadSource(root).read(0.0)
    assert values["cpu_runnable_others"] == 2.0 and values["cpu_contention"] is None


def test_contention_factor_model():
    assert contention_factor(1, 2) == 1.0  # one busy process, 1 inference thread, 2 cores: no slowdown
    assert contention_factor(1, 2, threads=2) == 1.5
    assert contention_factor(0, 4, threads=8) == 2.0
    assert contention_factor(5, 2) == 3.0
    with pytest.raises(ValueError, match="cores"):
        contention_factor(1, 0)


@pytest.mark.parametrize(
    ("text", "count"),
    [("0-3,6", 5), ("0", 1), ("0-1\n", 2), ("", None), ("a-b", None), ("3-1", None), ("0-3,5-4", None)],
)
def test_parse_cpu_list(text, count):
    assert parse_cpu_list(text) == count


def test_cores_from_online_when_no_quota(tree):
    root = tree({"sys/devices/system/cpu/online": "0-3\n"})
    assert CpuLoadSource(root).read(0.0)["cpu_cores_available"] == 4.0


def test_cgroup_v2_cpu_max_nested(tree):
    root = tree(
        {
            "sys/devices/system/cpu/online": "0-7\n",
            "proc/self/cgroup": "0::/pod/app\n",
            "sys/fs/cgroup/cgroup.controllers": "cpu\n",
            "sys/fs/cgroup/pod/cpu.max": "300000 100000\n",
            "sys/fs/cgroup/pod/app/cpu.max": "max 100000\n",
        }
    )
    assert cgroup_cpu_limit(str(root)) == 3.0
    assert CpuLoadSource(root).read(0.0)["cpu_cores_available"] == 3.0
    tree({"sys/fs/cgroup/pod/app/cpu.max": "150000 100000\n"})
    assert CpuLoadSource(root).read(0.0)["cpu_cores_available"] == 1.5


def test_cgroup_v1_cfs_quota(tree):
    files = {
        "sys/devices/system/cpu/online": "0-3\n",
        "proc/self/cgroup": "2:cpu,cpuacct:/grp\n",
        "sys/fs/cgroup/cpu,cpuacct/grp/cpu.cfs_quota_us": "50000\n",
        "sys/fs/cgroup/cpu,cpuacct/grp/cpu.cfs_period_us": "100000\n",
    }
    root = tree(files)
    assert CpuLoadSource(root).read(0.0)["cpu_cores_available"] == 0.5
    tree({"sys/fs/cgroup/cpu,cpuacct/grp/cpu.cfs_quota_us": "-1\n"})
    assert CpuLoadSource(root).read(0.0)["cpu_cores_available"] == 4.0
    tree({"sys/fs/cgroup/cpu,cpuacct/grp/cpu.cfs_quota_us": "lots\n"})
    assert CpuLoadSource(root).read(0.0)["cpu_cores_available"] == 4.0


def test_quota_change_seen_after_rescan(tree):
    root = tree({**ONLINE, "sys/fs/cgroup/cgroup.controllers": "", "sys/fs/cgroup/cpu.max": "max 100000\n"})
    source = CpuLoadSource(root, rescan_s=10.0)
    assert source.read(0.0)["cpu_cores_available"] == 2.0
    tree({"sys/fs/cgroup/cpu.max": "100000 100000\n"})
    assert source.read(5.0)["cpu_cores_available"] == 2.0
    assert source.read(10.0)["cpu_cores_available"] == 1.0


def test_empty_root_is_all_unknown(tmp_path):
    assert CpuLoadSource(tmp_path).read(0.0) == dict.fromkeys(CpuLoadSource.fields)


def test_real_machine_values_are_plausible():
    source = CpuLoadSource("/")
    first = source.read(0.0)
    assert first["cpu_cores_available"] is not None and first["cpu_cores_available"] > 0
    assert first["cpu_contention"] >= 1.0
    assert first["cpu_runnable_others"] >= 0.0
    source.close()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="alpha"):
        CpuLoadSource(tmp_path, alpha=0)
