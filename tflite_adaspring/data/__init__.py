"""Offline data sets: real data that ships inside installed packages, plus bring-your-own ``.npz``.

``load(task, **options)`` returns a :class:`Dataset`: normalised float32 ``x`` and int64 ``y`` for the
train/val/test splits (exactly what an exported model takes) and an :class:`InputSpec`. Only numpy is
needed; nothing is downloaded, and seglearn/aeon are never imported (their bundled files are read directly).

Tasks: ``har_watch``, ``fashion_mnist``, ``japanese_vowels``, ``basic_motions``, ``npz``.
"""

from tflite_adaspring.data.registry import TaskSummary, describe, get_task, list_tasks, load
from tflite_adaspring.data.spec import Dataset, InputSpec, Normalization, Split

__all__ = [
    "Dataset",
    "InputSpec",
    "Normalization",
    "Split",
    "TaskSummary",
    "describe",
    "get_task",
    "list_tasks",
    "load",
]
