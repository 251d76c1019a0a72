"""Ensemble training of a supernet: every configuration accurate without retraining.

Per step (sandwich rule): the largest config learns from the labels; the smallest and
``random_configs`` sampled configs learn from the labels and from the largest config's soft labels
of the same step (in-place distillation). The sampled part of the space grows with progressive
shrinking; channels are re-sorted by importance every few epochs; every evaluation recalibrates
BatchNorm statistics for the evaluated config. Written on ``tf.distribute.Strategy``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tflite_adaspring.data.spec import Dataset
from tflite_adaspring.space import Config
from tflite_adaspring.supernet import Supernet, apply_permutations
from tflite_adaspring.training.augment import augmentation_for
from tflite_adaspring.training.options import TrainOptions
from tflite_adaspring.training.schedule import sample_in_phase

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """A ``tf.distribute`` strategy by name.

    Args:
      name: ``default`` (one device), ``mirrored`` (every local device) or ``multi_worker`` (TF_CONFIG).

    Returns:
      The strategy.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")


class EnsembleTrainer:
    """Trains a supernet with the sandwich rule, in-place distillation and progressive shrinking.

    Args:
      build_supernet: builds the supernet (called inside the strategy scope).
      dataset: the task's splits.
      options: hyper-parameters.
      strategy: the distribution strategy (default: the current one).
      checkpoint_dir: where checkpoints go (None: no checkpoints).
      log_path: JSON-lines log of every epoch (None: no log).
      verbose: show a progress bar.
    """

    def __init__(
        self,
        build_supernet: Callable[[], Supernet],
        dataset: Dataset,
        options: TrainOptions | None = None,
        strategy: tf.distribute.Strategy | None = None,
        checkpoint_dir: str | Path | None = None,
        log_path: str | Path | None = None,
        verbose: bool = True,
    ):
        self.options = options = options or TrainOptions()
        self.dataset = dataset
        self.strategy = strategy or tf.distribute.get_strategy()
        self.verbose = verbose
        self.log_path = Path(log_path) if log_path else None
        tf_keras.utils.set_random_seed(options.seed)
        x_train = dataset.train[0]
        self.steps_per_epoch = len(x_train) // options.batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(f"batch_size {options.batch_size} exceeds the {len(x_train)} training examples")
        with self.strategy.scope():
            self.supernet = build_supernet()
            schedule = tf_keras.optimizers.schedules.CosineDecay(
                options.learning_rate, options.epochs * self.steps_per_epoch, alpha=0.01
            )
            self.optimizer = tf_keras.optimizers.AdamW(schedule, weight_decay=options.weight_decay)
            self.optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = tf.train.Checkpoint(model=self.supernet.model, optimizer=self.optimizer, epoch=self.epoch)
        self.manager = (
            tf.train.CheckpointManager(self.checkpoint, str(checkpoint_dir), max_to_keep=2) if checkpoint_dir else None
        )
        self._augment = augmentation_for(options.augmentation, dataset.spec)
        self._step = self._make_step()
        n = len(dataset.train[0])
        calib = np.random.default_rng(options.seed).permutation(n)[: options.recalibration_batches * options.batch_size]
        self._calibration = dataset.train[0][np.sort(calib)]

    # ----- checkpoints ---------------------------------------------------------------------------
    def restore(self) -> int:
        """Restores the latest checkpoint, if any.

        Returns:
          The number of epochs already trained.
        """
        if self.manager is not None and self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).expect_partial()
        return int(self.epoch.numpy())

    # ----- the training step -----------------------------------------------------------------------
    def _make_step(self) -> Callable[..., tf.Tensor]:
        sn, opt, o = self.supernet, self.optimizer, self.options
        strategy = self.strategy
        global_batch = o.batch_size
        variables = sn.model.trainable_variables
        classes = sn.backbone.num_classes
        with strategy.scope():
            # a graph loop cannot hold the cross-replica merge of the config assignment: unroll it then
            loop = _python_while if tf.distribute.has_strategy() else tf.while_loop

        def replica_step(x: tf.Tensor, y: tf.Tensor, codes: tf.Tensor) -> tf.Tensor:
            one_hot = tf.one_hot(y, classes)
            smoothed = one_hot * (1 - o.label_smoothing) + o.label_smoothing / classes

            # One config per iteration of a graph loop (on one replica): the forward and backward pass are
            # traced once, not once per config of the sandwich (tracing dominated the first epoch). Config 0
            # is the teacher: label-smoothed labels only; the others mix hard labels and its soft labels.
            def body(k: tf.Tensor, soft: tf.Tensor, teacher_loss: tf.Tensor, grads: list[tf.Tensor]) -> tuple:
                is_teacher = tf.equal(k, 0)
                sn.assign_codes(codes[k])
                with tf.GradientTape() as tape:
                    logits = sn.model(x, training=True)
                    hard = tf.nn.softmax_cross_entropy_with_logits(tf.where(is_teacher, smoothed, one_hot), logits)
                    kd = tf.nn.softmax_cross_entropy_with_logits(soft, logits / o.temperature) * o.temperature**2
                    w_kd = tf.where(is_teacher, 0.0, o.distill_weight)
                    loss = tf.reduce_sum((1 - w_kd) * hard + w_kd * kd) / global_batch
                step_grads = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
                soft = tf.where(is_teacher, tf.stop_gradient(tf.nn.softmax(logits / o.temperature)), soft)
                teacher_loss = tf.where(is_teacher, loss, teacher_loss)
                return k + 1, soft, teacher_loss, [a + b for a, b in zip(grads, step_grads)]

            start = (0, tf.zeros_like(one_hot), tf.constant(0.0), [tf.zeros_like(v) for v in variables])
            _, _, teacher_loss, grads = loop(lambda k, *_: k < codes.shape[0], body, start)
            opt.apply_gradients(zip(grads, variables))
            return teacher_loss

        @tf.function
        def step(dist_x: Any, dist_y: Any, codes: tf.Tensor) -> tf.Tensor:
            per_replica = strategy.run(replica_step, args=(dist_x, dist_y, codes))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        return step

    def _epoch_batches(self, epoch: int) -> Iterator[tuple[Any, Any]]:
        x, y = self.dataset.train
        order = np.random.default_rng([self.options.seed, epoch]).permutation(len(x))
        n = self.steps_per_epoch * self.options.batch_size
        xs = x[order[:n]]
        if self._augment is not None:
            xs = self._augment(xs, np.random.default_rng([self.options.seed, epoch, 1]))
        ds = tf.data.Dataset.from_tensor_slices((xs, y[order[:n]])).batch(self.options.batch_size, drop_remainder=True)
        return iter(self.strategy.experimental_distribute_dataset(ds))

    def _step_configs(self, epoch: int, step: int) -> list[Config]:
        space = self.supernet.space
        phase = self.options.schedule.phase(epoch / max(1, self.options.epochs))
        rng = random.Random(f"{self.options.seed}-{epoch}-{step}")
        if phase == "full":  # same number of configs in every phase: the step traces once
            return [space.largest()] * (2 + self.options.random_configs)
        configs = [space.largest(), sample_in_phase(space, rng, phase) if phase != "all" else space.smallest()]
        return configs + [sample_in_phase(space, rng, phase) for _ in range(self.options.random_configs)]

    # ----- the loop ---------------------------------------------------------------------------------
    def fit(self, until_epoch: int | None = None) -> list[dict[str, Any]]:
        """Trains until ``options.epochs`` (resuming from the latest checkpoint).

        Args:
          until_epoch: stop after this epoch instead (the schedule still spans ``options.epochs``).

        Returns:
          One log record per epoch trained by this call: ``epoch``, ``phase``, ``loss``, ``seconds`` (wall time
          of the training steps), ``cpu_seconds`` (CPU time of the whole epoch, evaluation included) and,
          every ``eval_every`` epochs and after the last, ``val_accuracy``.
        """
        o = self.options
        records = []
        start = self.restore()
        for epoch in range(start, min(o.epochs, until_epoch or o.epochs)):
            t0, cpu0 = time.perf_counter(), time.process_time()
            phase = o.schedule.phase(epoch / max(1, o.epochs))
            bar = tf_keras.utils.Progbar(self.steps_per_epoch, verbose=1 if self.verbose else 0, unit_name="step")
            if self.verbose:
                print(f"epoch {epoch + 1}/{o.epochs} (phase {phase})", file=sys.stderr)
            losses = []
            for step, (x, y) in enumerate(self._epoch_batches(epoch)):
                codes = np.stack([self.supernet.encode(c) for c in self._step_configs(epoch, step)])
                loss = float(self._step(x, y, tf.constant(codes, tf.int32)))
                losses.append(loss)
                bar.update(step + 1, [("loss", loss)])
            if o.resort_every and (epoch + 1) % o.resort_every == 0 and epoch + 1 < o.epochs:
                apply_permutations(self.supernet.channel_permutations(), self.optimizer)
            self.epoch.assign(epoch + 1)
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "phase": phase,
                "loss": float(np.mean(losses)),
                "seconds": round(time.perf_counter() - t0, 2),
            }
            if (epoch + 1) % max(1, o.eval_every) == 0 or epoch + 1 == o.epochs:
                record["val_accuracy"] = self.evaluate_sample(split="val", seed=epoch)
            if self.manager is not None:
                self.manager.save(checkpoint_number=epoch + 1)
            record["cpu_seconds"] = round(time.process_time() - cpu0, 2)  # every thread, evaluation included
            self._log(record)
            records.append(record)
        return records

    def _log(self, record: dict[str, Any]) -> None:
        if self.verbose:
            acc = record.get("val_accuracy")
            val = f"  val acc largest {acc['largest']:.3f} smallest {acc['smallest']:.3f}" if acc else ""
            print(f"  loss {record['loss']:.4f}{val} ({record['seconds']:.1f} s)", file=sys.stderr)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    # ----- evaluation -------------------------------------------------------------------------------
    def calibration_batches(self) -> list[np.ndarray]:
        """The fixed training batches used for BatchNorm recalibration."""
        b = self.options.batch_size
        return [self._calibration[i : i + b] for i in range(0, len(self._calibration), b)]

    def accuracy(self, config: Config, split: str = "val") -> float:
        """Accuracy of ``config`` on a split, after recalibrating its BatchNorm statistics."""
        return accuracy(self.supernet, config, getattr(self.dataset, split), self.calibration_batches())

    def evaluate_sample(self, split: str = "val", seed: int = 0) -> dict[str, Any]:
        """Accuracy of the largest, the smallest and ``eval_random_configs`` random configs."""
        space = self.supernet.space
        rng = random.Random(f"eval-{seed}")
        randoms = [space.sample(rng, precision="fp32") for _ in range(self.options.eval_random_configs)]
        return {
            "largest": self.accuracy(space.largest(), split),
            "smallest": self.accuracy(space.smallest(), split),
            "random": {c.id: self.accuracy(c, split) for c in randoms},
        }


def _python_while(cond: Callable[..., Any], body: Callable[..., tuple], loop_vars: tuple) -> tuple:
    """``tf.while_loop`` unrolled at trace time (the condition must be a Python bool)."""
    while cond(*loop_vars):
        loop_vars = body(*loop_vars)
    return loop_vars


def accuracy(
    supernet: Supernet, config: Config, split: tuple[np.ndarray, np.ndarray], calibration: list[np.ndarray]
) -> float:
    """Recalibrates ``config``'s BatchNorm statistics, then measures its accuracy on ``split``.

    Args:
      supernet: the supernet.
      config: the configuration.
      split: ``(x, y)``.
      calibration: input batches for recalibration.

    Returns:
      Accuracy in [0, 1].
    """
    supernet.recalibrate(config, calibration)
    x, y = split
    correct = 0
    for i in range(0, len(x), 512):
        logits = supernet.forward(x[i : i + 512], config)
        correct += int(np.sum(np.argmax(logits.numpy(), axis=-1) == y[i : i + 512]))
    return correct / max(1, len(x))
