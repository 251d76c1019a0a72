"""Training a plain tf_keras model alone with a run's recipe (used by retrain-gap and the compare baselines).

Same batch size, optimizer (AdamW with cosine decay), weight decay, label smoothing, augmentation and
data order as the ensemble run; no distillation (a net trained alone has no teacher).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def fit_plain(
    model: Any,
    dataset: Any,
    options: Any,
    epochs: int | None = None,
    learning_rate: float | None = None,
    callbacks: Sequence[Any] = (),
    log: Callable[[str], None] | None = None,
    label: str = "",
) -> Any:
    """Trains ``model`` in place on ``dataset.train`` with the run's recipe and returns it.

    Args:
      model: a built tf_keras model producing logits (its current weights are the starting point).
      dataset: the task's :class:`~tflite_adaspring.data.spec.Dataset`.
      options: the run's :class:`~tflite_adaspring.training.options.TrainOptions`.
      epochs: epoch budget (default ``options.epochs``).
      learning_rate: peak learning rate (default ``options.learning_rate``; lower it to fine-tune).
      callbacks: extra Keras callbacks (e.g. TFMOT's ``UpdatePruningStep``).
      log: progress messages, one per epoch (None: quiet).
      label: names the model in the progress messages.

    Returns:
      ``model``, trained.

    Raises:
      ValueError: ``epochs`` < 1 or fewer training examples than one batch.
    """
    import tf_keras

    from tflite_adaspring.training.augment import augmentation_for

    epochs = options.epochs if epochs is None else int(epochs)
    x, y = dataset.train
    steps = len(x) // options.batch_size
    if epochs < 1 or steps < 1:
        raise ValueError(f"fit_plain needs epochs >= 1 and >= 1 batch of {options.batch_size}, got {epochs}, {len(x)}")
    peak = options.learning_rate if learning_rate is None else learning_rate
    schedule = tf_keras.optimizers.schedules.CosineDecay(peak, epochs * steps, alpha=0.01)
    optimizer = tf_keras.optimizers.AdamW(schedule, weight_decay=options.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    loss = tf_keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=options.label_smoothing)
    model.compile(optimizer=optimizer, loss=loss)
    augment = augmentation_for(options.augmentation, dataset.spec)
    one_hot = np.eye(dataset.spec.num_classes, dtype=np.float32)[y]
    for epoch in range(epochs):
        order = np.random.default_rng([options.seed, epoch]).permutation(len(x))[: steps * options.batch_size]
        xs = x[order] if augment is None else augment(x[order], np.random.default_rng([options.seed, epoch, 1]))
        history = model.fit(xs, one_hot[order], batch_size=options.batch_size, epochs=1, verbose=0, shuffle=False,
                            callbacks=list(callbacks))  # fmt: skip
        if log is not None:
            log(f"  {label} epoch {epoch + 1}/{epochs} loss {history.history['loss'][-1]:.4f}")
    return model


def keras_accuracy(model: Any, split: tuple[np.ndarray, np.ndarray]) -> float:
    """Accuracy of a tf_keras logits model on ``(x, y)`` (0.0 for an empty split)."""
    x, y = split
    if len(x) == 0:
        return 0.0
    return float(np.mean(np.argmax(model.predict(x, batch_size=512, verbose=0), -1) == y))


def save_weights_npz(model: Any, path: Any) -> None:
    """Writes ``model``'s weights to an ``.npz`` file atomically (any Keras version or save format).

    Args:
      model: a built tf_keras model.
      path: destination file; parent folders are created.
    """
    import io

    from tflite_adaspring.fileio import atomic_write_bytes

    buffer = io.BytesIO()
    np.savez(buffer, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    atomic_write_bytes(path, buffer.getvalue())


def load_weights_npz(model: Any, path: Any) -> Any:
    """Sets ``model``'s weights from a file written by :func:`save_weights_npz` and returns the model.

    Raises:
      ValueError: the file holds a different number of weights or a shape that does not fit.
    """
    with np.load(path) as z:
        weights = [z[f"w{i}"] for i in range(len(z.files))]
    model.set_weights(weights)
    return model
