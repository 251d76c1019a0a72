"""Ensemble training of supernets (needs the ``train`` extra)."""

from tflite_adaspring.training.options import TrainOptions
from tflite_adaspring.training.schedule import PHASES, ShrinkSchedule, sample_in_phase
from tflite_adaspring.training.trainer import STRATEGIES, EnsembleTrainer, accuracy, make_strategy

__all__ = [
    "PHASES",
    "STRATEGIES",
    "EnsembleTrainer",
    "ShrinkSchedule",
    "TrainOptions",
    "accuracy",
    "make_strategy",
    "sample_in_phase",
]
