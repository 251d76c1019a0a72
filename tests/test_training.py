"""Ensemble training on a tiny backbone: loss goes down, resume reproduces, mirrored strategy runs."""

import dataclasses

import numpy as np
import pytest

from tflite_adaspring import data
from tflite_adaspring.models.residual_cnn import timeseries_backbone
from tflite_adaspring.supernet import Supernet
from tflite_adaspring.training import EnsembleTrainer, ShrinkSchedule, TrainOptions, sample_in_phase
from tflite_adaspring.training.run import RunInfo, load_run, save_run_info


@pytest.fixture(scope="module")
def dataset():
    return data.load("basic_motions")


def tiny_backbone(spec):
    full = timeseries_backbone(spec.input_shape, spec.num_classes)
    return dataclasses.replace(
        full, stem_channels=8, stage_channels=(8, 16), blocks_per_stage=(2, 1), head_units=16, ops=("std", "fire")
    )


def tiny_options(**kw):
    base = TrainOptions(epochs=2, batch_size=8, random_configs=0, recalibration_batches=2, eval_random_configs=0)
    return dataclasses.replace(base, **kw)


def make_trainer(dataset, options, **kw):
    backbone = tiny_backbone(dataset.spec)
    return EnsembleTrainer(lambda: Supernet(backbone, dataset.spec), dataset, options, verbose=False, **kw)


def test_progressive_shrinking_samples_the_phase_subspace(dataset):
    import random

    space = tiny_backbone(dataset.spec).space()
    rng = random.Random(0)
    assert sample_in_phase(space, rng, "full") == space.largest()
    for _ in range(20):
        c = sample_in_phase(space, rng, "depth")
        assert all(b.op == "std" and b.width == 1.0 for s in c.stages for b in s)
        c = sample_in_phase(space, rng, "width")
        assert all(b.op == "std" for s in c.stages for b in s)
    assert ShrinkSchedule().phase(0.0) == "full" and ShrinkSchedule().phase(0.99) == "all"
    with pytest.raises(ValueError, match="phases"):
        ShrinkSchedule((("depth", 0.0),))


def test_a_few_steps_lower_the_loss_and_checkpoint_resume_reproduces(dataset, tmp_path):
    options = tiny_options(
        epochs=4, eval_every=2, learning_rate=1e-2, schedule=ShrinkSchedule((("full", 0.0), ("depth", 0.5)))
    )
    straight = make_trainer(dataset, options)
    records = straight.fit()
    assert records[-1]["loss"] < records[0]["loss"]
    assert ["val_accuracy" in r for r in records] == [False, True, False, True]  # every 2nd epoch and the last
    # two epochs, stop, resume in a new trainer from the checkpoint: same weights as training straight through
    first = make_trainer(dataset, options, checkpoint_dir=tmp_path / "ck")
    first.fit(until_epoch=2)
    resumed = make_trainer(dataset, options, checkpoint_dir=tmp_path / "ck", log_path=tmp_path / "log.jsonl")
    assert resumed.restore() == 2
    resumed.fit()
    for a, b in zip(straight.supernet.model.weights, resumed.supernet.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4, err_msg=a.name)
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 2


def test_run_folder_round_trip(dataset, tmp_path):
    options = tiny_options(epochs=1, eval_every=3)
    trainer = make_trainer(dataset, options, checkpoint_dir=tmp_path / "checkpoints")
    trainer.fit()
    spec = dataset.spec
    save_run_info(tmp_path, RunInfo("basic_motions", {}, spec, tiny_backbone(spec), trainer.options))
    info, supernet, _ = load_run(tmp_path)
    assert info.backbone == tiny_backbone(spec)
    assert info.options == options
    for a, b in zip(trainer.supernet.model.weights, supernet.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(FileNotFoundError, match="adaspring train"):
        load_run(tmp_path / "nothing")


MIRRORED_SCRIPT = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
import numpy as np
from test_training import data, make_trainer, tiny_options
strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
records = make_trainer(data.load("basic_motions"), tiny_options(epochs=1), strategy=strategy).fit()
assert np.isfinite(records[0]["loss"]), records
print("MIRRORED_OK", strategy.num_replicas_in_sync, records[0]["loss"])
"""


def test_mirrored_strategy_step_runs_on_two_logical_cpus():
    # logical devices must be configured before TensorFlow initialises: use a fresh process
    import subprocess
    import sys
    from pathlib import Path

    tests_dir = str(Path(__file__).parent)
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, tests_dir], capture_output=True, text=True, timeout=600
    )
    assert "MIRRORED_OK 2" in proc.stdout, proc.stderr[-3000:]


def test_step_applies_the_sandwich_loss_of_every_config(dataset):
    """The graph-loop step equals AdamW on the summed eager losses: the teacher on smoothed labels, the
    students on hard labels mixed with the teacher's soft labels."""
    import random

    import tensorflow as tf
    import tf_keras

    options = tiny_options(random_configs=1, distill_weight=0.5, temperature=2.0, label_smoothing=0.2)
    looped, eager = make_trainer(dataset, options), make_trainer(dataset, options)
    before = [w.numpy() for w in eager.supernet.model.weights]
    for a, b in zip(looped.supernet.model.weights, before):
        np.testing.assert_array_equal(a.numpy(), b)
    space = looped.supernet.space
    configs = [space.largest(), space.smallest(), space.sample(random.Random(3), precision="fp32")]
    x, y = dataset.train[0][:8], dataset.train[1][:8]
    codes = tf.constant(np.stack([looped.supernet.encode(c) for c in configs]), tf.int32)
    teacher_loss = float(looped._step(tf.constant(x), tf.constant(y), codes))

    sn, t, k = eager.supernet, options.temperature, dataset.spec.num_classes
    one_hot = tf.one_hot(y, k)
    with tf.GradientTape() as tape:
        teacher = sn.forward(x, configs[0], training=True)
        smooth_ce = tf_keras.losses.categorical_crossentropy(one_hot, teacher, from_logits=True, label_smoothing=0.2)
        loss = expected_teacher = tf.reduce_mean(smooth_ce)
        soft = tf.stop_gradient(tf.nn.softmax(teacher / t))
        for config in configs[1:]:
            logits = sn.forward(x, config, training=True)
            hard = tf_keras.losses.categorical_crossentropy(one_hot, logits, from_logits=True)
            kd = tf_keras.losses.categorical_crossentropy(soft, logits / t, from_logits=True) * t**2
            loss += tf.reduce_mean(0.5 * hard + 0.5 * kd)
    variables = sn.model.trainable_variables
    grads = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    eager.optimizer.apply_gradients(zip(grads, variables))

    assert teacher_loss == pytest.approx(float(expected_teacher), rel=1e-5)
    moved = 0
    for a, b, start in zip(looped.supernet.model.weights, eager.supernet.model.weights, before):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.name)
        moved += int(not np.allclose(a.numpy(), start))
    assert moved > 10
