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
    assert set(acc) == {"test", "val", "train_seconds"} and 0.0 <= acc["test"] <= 1.0 and 0.0 <= acc["val"] <= 1.0


def test_standalone_weights_are_cached_by_config_and_recipe(setup, tmp_path, monkeypatch):
    from tflite_adaspring.bench import standalone
    from tflite_adaspring.bench.retrain_gap import standalone_cache_path

    supernet, dataset = setup
    options = dataclasses.replace(tiny_options(), epochs=1)
    config = supernet.space.smallest()
    first = train_standalone(supernet, config, dataset, options, cache_dir=tmp_path)
    assert standalone_cache_path(tmp_path, config.id, options).exists()

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although cached")

    monkeypatch.setattr(standalone, "fit_plain", no_training)
    assert train_standalone(supernet, config, dataset, options, cache_dir=tmp_path) == first
    # another recipe or config is another cache entry
    other = dataclasses.replace(options, learning_rate=options.learning_rate / 2)
    assert standalone_cache_path(tmp_path, config.id, other) != standalone_cache_path(tmp_path, config.id, options)
    assert standalone_cache_path(tmp_path, "x", options) != standalone_cache_path(tmp_path, config.id, options)
    # fields a net trained alone never sees (distillation) share the entry
    distill = dataclasses.replace(options, distill_weight=0.9)
    assert standalone_cache_path(tmp_path, config.id, distill) == standalone_cache_path(tmp_path, config.id, options)
    with pytest.raises(AssertionError, match="trained again"):
        train_standalone(supernet, config, dataset, other, cache_dir=tmp_path)


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
    assert seen == [calibration] and 0.0 <= acc["test"] <= 1.0


def test_markdown_table_and_cli_validation(capsys):
    row = {"config": "s100-r100-fp32", "macs": 1000, "params": 10, "supernet_accuracy": 0.9,
           "standalone_accuracy": 0.88, "gap_points": 2.0}  # fmt: skip
    text = markdown_table(
        {"task": "t", "epochs": 3, "rows": [row], "mean_gap_points": 2.0, "mean_val_gap_points": -1.5}
    )
    assert "| `s100-r100-fp32` | 1,000 | 10 | 90.00% | 88.00% | +2.00 |" in text
    assert "+2.00 points" in text and "On the validation split: -1.50 points." in text
    assert main(["adaspring", "bench", "retrain-gap", "--configs", "3"]) == 2
    assert "--configs must be >= 4" in capsys.readouterr().err


def test_training_time_is_read_from_the_run_folder(tmp_path):
    import json

    from tflite_adaspring.bench.retrain_gap import supernet_training_time

    (tmp_path / "train_report.json").write_text(json.dumps({"train_seconds_this_call": 412.5}))
    log = [{"epoch": 1, "cpu_seconds": 100.25}, {"epoch": 2, "cpu_seconds": 50.0}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    times = supernet_training_time(tmp_path)
    assert times == {"supernet_train_seconds": 412.5, "supernet_train_cpu_seconds": 150.2}
    row = {"config": "c", "macs": 1, "params": 1, "supernet_accuracy": 0.5, "standalone_accuracy": 0.5, "gap_points": 0}
    assert "Supernet training: 412 s wall, 150 s CPU (measured)." in markdown_table(
        {"task": "t", "epochs": 2, "rows": [row], "mean_gap_points": 0.0, **times}
    )
    (tmp_path / "log.jsonl").write_text(json.dumps({"epoch": 1}) + "\n")  # logged before CPU time was recorded
    assert supernet_training_time(tmp_path)["supernet_train_cpu_seconds"] is None


def test_whole_split_batches_cover_the_training_split_once_shuffled():
    import numpy as np

    from tflite_adaspring.bench.retrain_gap import whole_split_batches

    x = np.arange(10, dtype=np.float32)[:, None]
    batches = whole_split_batches(x, 4, seed=1)
    assert [len(b) for b in batches] == [4, 4, 2]
    seen = np.concatenate(batches)[:, 0]
    assert sorted(seen) == list(range(10)) and list(seen) != list(range(10))
    np.testing.assert_array_equal(np.concatenate(whole_split_batches(x, 4, seed=1)), np.concatenate(batches))
