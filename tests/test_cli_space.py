"""``adaspring space``: sizes and MAC ranges of the default spaces."""

import json

import pytest

from tflite_adaspring.cli.main import main


@pytest.mark.parametrize("task", ["har_watch", "fashion_mnist"])
def test_space_json_reports_size_and_mac_range(task, capsys):
    assert main(["adaspring", "space", "--task", task, "--json", "--samples", "20"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["space"]["size"] >= 10**4
    assert info["macs_range"][1] >= 10 * info["macs_range"][0]
    assert info["largest"]["macs"] == info["macs_range"][1]
    assert set(info["knobs"]) >= {"stage0.depth", "stage0.block0.op", "stage0.block0.width", "head_rank", "precision"}


def test_space_rejects_npz_without_data(capsys):
    assert main(["adaspring", "space", "--task", "npz"]) == 2
    assert "--task npz needs --data" in capsys.readouterr().err
