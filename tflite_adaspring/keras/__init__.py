"""Make a user's tf_keras CNN elastic, like ``tfmot.sparsity.keras.prune_low_magnitude`` does for pruning.

    from tflite_adaspring.keras import make_elastic

    elastic = make_elastic(model)          # a built Sequential/Functional tf_keras model; left unchanged
    print(elastic.report)                  # what got a width / rank / depth knob, what was kept and why
    config = elastic.space.sample(random.Random(0))
    y = elastic.forward(x, config)         # the supernet under config
    sub = elastic.materialize(config)      # a plain tf_keras model with derived weights
    elastic.cost(config).params == sub.count_params()

``elastic.model`` is the trainable supernet (a functional tf_keras model).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import tf_keras

from tflite_adaspring.keras.analysis import ElasticOptions
from tflite_adaspring.keras.elastic_model import ElasticModel
from tflite_adaspring.keras.knob_space import KnobConfig, KnobSpace, KnobSpec
from tflite_adaspring.keras.report import ElasticReport, LayerEntry


def make_elastic(
    model: tf_keras.Model,
    widths: Sequence[float] | None = (0.25, 0.5, 0.75, 1.0),
    ranks: Sequence[float] | None = (0.125, 0.25, 0.5, 1.0),
    depth: bool = True,
    min_rank_dim: int = 16,
    exclude: Iterable[str] = (),
) -> ElasticModel:
    """Turns a built tf_keras Sequential/Functional model into an elastic supernet.

    Conv1D/Conv2D/Dense layers get a width knob when their output channels reach exactly one
    Conv/Dense through channelwise layers (BatchNorm, activations, pooling, dropout, depthwise,
    a Flatten); Dense layers at least ``min_rank_dim`` in both dimensions get a low-rank knob instead;
    runs of two or more consecutive residual blocks (``Add([x, f(x)])``) get a depth knob. Everything
    else is copied unchanged and listed in ``report`` with the reason.

    Args:
      model: the user's model; its weights are copied, the model itself is not modified.
      widths: width fractions, ascending, ending at 1.0 (None: no width knobs).
      ranks: rank fractions, ascending, ending at 1.0 (None: no rank knobs).
      depth: give runs of residual blocks a depth knob.
      min_rank_dim: smallest ``min(in, out)`` of a Dense matrix that gets a rank knob.
      exclude: names of layers to leave as they are.

    Returns:
      The elastic model.

    Raises:
      ModelFormatError: the model is not a built Sequential/Functional tf_keras model.
      ValueError: bad widths / ranks.
    """
    options = ElasticOptions(
        widths=None if widths is None else tuple(float(w) for w in widths),
        ranks=None if ranks is None else tuple(float(r) for r in ranks),
        depth=depth,
        min_rank_dim=min_rank_dim,
        exclude=frozenset(exclude),
    )
    return ElasticModel(model, options)


def strip(elastic: ElasticModel, config: KnobConfig | None = None) -> tf_keras.Model:
    """The plain tf_keras model of ``config`` (default: the largest), like ``tfmot``'s ``strip_pruning``."""
    return elastic.strip(config)


__all__ = [
    "ElasticModel",
    "ElasticOptions",
    "ElasticReport",
    "KnobConfig",
    "KnobSpace",
    "KnobSpec",
    "LayerEntry",
    "make_elastic",
    "strip",
]
