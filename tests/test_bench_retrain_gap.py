"""retrain-gap benchmark pieces on a tiny backbone: config spread, standalone training, the table."""

import dataclasses

import pytest
from test_training import tiny_backbone, tiny_options

from tflite_adaspring import data
from tflite_adaspring.bench.retrain_gap import markdown_table, spanning_configs, train_standalone
from tflite_adaspring.cli.main import main
from tflite_adaspring.supernet import Supernet


@pytest.fixture(scope="module")
def setup():
    dataset = data.load("basic_motions")
    return Supernet(tiny_backbone(dataset.spec), dataset.spec), dataset


def test_spanning_configs_cover_the_mac_range(setup):
    supernet, _ = setup
    configs = spanning_configs(supernet, 5)
    macs = [supernet.cost(c).macs for c in configs]
    assert len(configs) == 5
    assert configs[0] == supernet.space.largest() and configs[-1] == supernet.space.smallest()
    assert macs[0] == max(macs) and macs[-1] == min(macs)
    assert macs[1:-1] == sorted(macs[1:-1]) and len(set(macs[1:-1])) == 3  # distinct quantiles, ascending


def test_standalone_training_returns_an_accuracy(setup):
    supernet, dataset = setup
    acc = train_standalone(supernet, supernet.space.smallest(), dataset, dataclasses.replace(tiny_options(), epochs=1))
    assert 0.0 <= acc <= 1.0


def test_standalone_is_evaluated_after_bn_recalibration_on_the_given_batches(setup, monkeypatch):
    from tflite_adaspring.bench import baselines

    supernet, dataset = setup
    calibration = [dataset.train[0][:16], dataset.train[0][16:32]]
    seen = []
    real = baselines.recalibrate_plain

    def spy(model, batches):
        seen.append(batches)
        return real(model, batches)

    monkeypatch.setattr(baselines, "recalibrate_plain", spy)
    options = dataclasses.replace(tiny_options(), epochs=1)
    acc = train_standalone(supernet, supernet.space.smallest(), dataset, options, calibration)
    assert seen == [calibration] and 0.0 <= acc <= 1.0


def test_markdown_table_and_cli_validation(capsys):
    row = {"config": "s100-r100-fp32", "macs": 1000, "params": 10, "supernet_accuracy": 0.9,
           "standalone_accuracy": 0.88, "gap_points": 2.0}  # fmt: skip
    text = markdown_table({"task": "t", "epochs": 3, "rows": [row], "mean_gap_points": 2.0})
    assert "| `s100-r100-fp32` | 1,000 | 10 | 90.00% | 88.00% | +2.00 |" in text
    assert "+2.00 points" in text
    assert main(["adaspring", "bench", "retrain-gap", "--configs", "3"]) == 2
    assert "--configs must be >= 4" in capsys.readouterr().err
