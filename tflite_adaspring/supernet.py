"""The self-evolutionary network: one set of weights, every configuration of a search space.

``sn = build_supernet("har_watch")`` gives a :class:`Supernet` with ``sn.space``,
``sn.forward(x, config)``, ``sn.materialize(config)`` (a plain tf_keras model with derived weights)
and ``sn.cost(config)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tflite_adaspring.cost import Cost
from tflite_adaspring.data.spec import InputSpec
from tflite_adaspring.models.residual_cnn import BackboneSpec, ResidualCNN, backbone_for
from tflite_adaspring.operators.batchnorm import ElasticBatchNorm
from tflite_adaspring.operators.decomposition import Permutation
from tflite_adaspring.space import Config, SearchSpace


class Supernet:
    """A trained-once network whose configurations are all usable without retraining.

    Args:
      backbone: the backbone hyper-parameters.
      input_spec: the task's input spec (kept for export metadata), optional.
    """

    def __init__(self, backbone: BackboneSpec, input_spec: InputSpec | None = None):
        self.backbone = backbone
        self.input_spec = input_spec
        self.space: SearchSpace = backbone.space()
        self.net = ResidualCNN(backbone)
        self.model: tf_keras.Model = self.net.model
        signature = [tf.TensorSpec([None, *backbone.input_shape], tf.float32)]
        # one trace for every batch size and every config (configs live in variables)
        self._infer = tf.function(lambda x: self.model(x, training=False), input_signature=signature)
        self._train_forward = tf.function(lambda x: self.model(x, training=True), input_signature=signature)
        # per config: (mean, variance) of every BN layer, in ``batchnorms()`` order.
        self.bn_statistics: dict[Config, list[tuple[np.ndarray, np.ndarray]]] = {}

    # ----- configuration ---------------------------------------------------------------------------
    def set_config(self, config: Config) -> None:
        """Makes ``config`` active for the following forward passes (no retracing).

        Raises:
          ConfigError: if ``config`` is outside :attr:`space`.
        """
        self.space.validate(config)
        for stage_op, stage in zip(self.net.stages, config.stages):
            stage_op.set_stage_choice(stage)
        self.net.head.set_choice(config.head_rank)

    def assign_codes(self, codes: tf.Tensor) -> None:
        """Activates a config given as ``space.encode(config)`` (an int32 tensor); graph-safe.

        Args:
          codes: int32 vector aligned with ``space.knob_names``.
        """
        pos = 0
        for stage_op in self.net.stages:
            stage_op.choice_variable().assign(codes[pos] - self.space.min_depth)
            pos += 1
            for block in stage_op.blocks:
                block.assign_codes(codes[pos], codes[pos + 1])
                pos += 2
        self.net.head.choice_variable().assign(codes[pos])

    def encode(self, config: Config) -> np.ndarray:
        """``space.encode(config)`` as an int32 array."""
        return np.asarray(self.space.encode(config), np.int32)

    # ----- forward, materialise, cost --------------------------------------------------------------
    def forward(self, x: Any, config: Config, training: bool = False) -> tf.Tensor:
        """Supernet output (logits) for ``x`` under ``config``.

        Args:
          x: a batch shaped ``(n,) + input_shape``.
          config: the configuration.
          training: BatchNorm in training mode (batch statistics) when True.

        Returns:
          Logits ``(n, num_classes)``.
        """
        self.set_config(config)
        if training:
            return self.model(x, training=True)
        return self._infer(tf.convert_to_tensor(x, tf.float32))

    def materialize(self, config: Config) -> tf_keras.Model:
        """A plain tf_keras model for ``config`` (sliced / truncated / selected weights; no retraining).

        Uses the BatchNorm statistics recalibrated for ``config`` when :meth:`recalibrate` stored them.
        """
        self.space.validate(config)
        with self.using_statistics(config):
            return self.net.materialize(config)

    def cost(self, config: Config) -> Cost:
        """Analytic params, MACs, exported weight elements and activation peak of ``config``."""
        self.space.validate(config)
        return self.net.cost(config)

    # ----- BatchNorm recalibration -------------------------------------------------------------------
    def batchnorms(self) -> list[ElasticBatchNorm]:
        """Every elastic BatchNorm layer."""
        return self.net.batchnorms()

    def recalibrate(self, config: Config, batches: Iterable[Any], store: bool = True) -> None:
        """Re-estimates BatchNorm statistics for ``config`` on calibration batches.

        The population mean/variance of every BN input under ``config`` replaces the moving
        statistics; with ``store`` they are also kept in :attr:`bn_statistics` so that
        :meth:`materialize` and :meth:`using_statistics` reuse them. The kept copy is rounded to
        float16 precision (relative error <= 2^-11, far below the sampling error of a few calibration
        batches), so exports store each configuration's statistics in half the bytes, losslessly.

        Args:
          config: the configuration.
          batches: iterable of input batches (arrays shaped ``(n,) + input_shape``).
          store: keep the statistics per config.
        """
        self.set_config(config)
        bns = self.batchnorms()
        for bn in bns:
            bn.start_recalibration()
        seen = 0
        for x in batches:
            self._train_forward(tf.convert_to_tensor(x, tf.float32))
            seen += 1
        for bn in bns:
            bn.finish_recalibration()
        if seen == 0:
            raise ValueError("recalibrate needs at least one calibration batch")
        if store:
            self.bn_statistics[_stats_key(config)] = [
                (half_precision(m), half_precision(v)) for m, v in _read_statistics(bns)
            ]

    @contextlib.contextmanager
    def using_statistics(self, config: Config) -> Iterator[None]:
        """Within the block, BatchNorm layers hold ``config``'s recalibrated statistics (if stored)."""
        stored = self.bn_statistics.get(_stats_key(config))
        if stored is None:
            yield
            return
        bns = self.batchnorms()
        saved = _read_statistics(bns)
        _write_statistics(bns, stored)
        try:
            yield
        finally:
            _write_statistics(bns, saved)

    # ----- channel re-sorting ------------------------------------------------------------------------
    def channel_permutations(self) -> list[Permutation]:
        """Importance re-sort permutations of every block's inner channels."""
        return [p for stage in self.net.stages for block in stage.blocks for p in block.channel_permutations()]


def half_precision(values: np.ndarray) -> np.ndarray:
    """``values`` rounded to the nearest float16, as float32 (unchanged when float16 cannot hold them)."""
    values = np.asarray(values, np.float32)
    if not np.all(np.isfinite(values)) or np.max(np.abs(values), initial=0.0) > np.finfo(np.float16).max:
        return values
    return values.astype(np.float16).astype(np.float32)


def _read_statistics(bns: list[ElasticBatchNorm]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(bn.moving_mean.numpy(), bn.moving_variance.numpy()) for bn in bns]


def _write_statistics(bns: list[ElasticBatchNorm], stats: list[tuple[np.ndarray, np.ndarray]]) -> None:
    for bn, (mean, var) in zip(bns, stats):
        bn.set_statistics(mean, var)


def _stats_key(config: Config) -> Config:
    return config.with_precision("fp32")


def apply_permutations(permutations: Iterable[Permutation], optimizer: tf_keras.optimizers.Optimizer | None = None):
    """Permutes variables (and their optimizer slots) along an axis.

    Args:
      permutations: ``(variable, axis, order)`` triples.
      optimizer: if given, its slot variables for each variable are permuted too.
    """
    for var, axis, order in permutations:
        targets = [var]
        if optimizer is not None:
            targets += _slots(optimizer, var)
        for target in targets:
            target.assign(tf.gather(target, order, axis=axis))


def _slots(optimizer: tf_keras.optimizers.Optimizer, var: tf.Variable) -> list[tf.Variable]:
    slots = []
    if hasattr(optimizer, "_var_key") and hasattr(optimizer, "_slots"):  # legacy optimizers
        for slot in optimizer._slots.get(optimizer._var_key(var), {}).values():
            slots.append(slot)
        return slots
    for name in ("_momentums", "_velocities"):  # tf_keras 2.x experimental optimizers (Adam, SGD)
        store = getattr(optimizer, name, None)
        if store and hasattr(optimizer, "_index_dict"):
            index = optimizer._index_dict.get(optimizer._var_key(var))
            if index is not None:
                slots.append(store[index])
    return slots


def build_supernet(task_or_input_spec: str | InputSpec, num_classes: int | None = None) -> Supernet:
    """Builds the default supernet for a task or an input spec.

    Args:
      task_or_input_spec: a registered task name (its spec is read from the dataset loader) or an
        :class:`InputSpec`.
      num_classes: overrides the number of classes.

    Returns:
      The supernet, with randomly initialised weights.
    """
    if isinstance(task_or_input_spec, str):
        from tflite_adaspring import data

        spec = data.load(task_or_input_spec).spec
    elif isinstance(task_or_input_spec, InputSpec):
        spec = task_or_input_spec
    else:
        raise TypeError(f"expected a task name or an InputSpec, got {type(task_or_input_spec).__name__}")
    backbone = backbone_for(spec)
    if num_classes is not None:
        backbone = BackboneSpec(**{**backbone.__dict__, "num_classes": int(num_classes)})
    return Supernet(backbone, spec)
