"""Typed errors raised by tflite-adaspring.

Every error names what is wrong and what to do about it. Each class also derives from the builtin
exception a caller would naturally catch (``ValueError``, ``FileNotFoundError``, ...), so code written
against plain Python/LiteRT behaviour keeps working.
"""


class AdaSpringError(Exception):
    """Base class of every error raised by this package."""


class DatasetUnavailableError(AdaSpringError, FileNotFoundError):
    """A dataset's files are not installed; the message names the command that installs them."""


class DataValidationError(AdaSpringError, ValueError):
    """User-supplied data is malformed; the message names the offending field."""


class ConfigError(AdaSpringError, ValueError):
    """A configuration does not belong to the search space; the message names the knob and its choices."""


class ModelFormatError(AdaSpringError, ValueError):
    """A model file is truncated, corrupted, or lacks the ``adaspring`` metadata."""


class MissingMetadataError(ModelFormatError):
    """A valid .tflite that carries no ``adaspring`` metadata (not produced by ``adaspring export``)."""


class InputMismatchError(DataValidationError):
    """An input's shape or dtype does not match what the active configuration expects."""


class SchemaVersionError(ModelFormatError):
    """A model or config was written by a newer (or incompatible) schema version."""


class DelegateError(AdaSpringError, ValueError):
    """The AdaSpring delegate could not be loaded or queried; the message names the option or file at fault.

    Derives from ``ValueError`` because that is what ``load_delegate`` of LiteRT/TensorFlow raises.
    """


class DelegateNotFoundError(DelegateError, FileNotFoundError):
    """``libadaspring_delegate.so`` is not built; the message lists where it was looked for and how to build it."""


class DelegateBuildError(DelegateError):
    """Compiling ``libadaspring_delegate.so`` failed (no compiler, no Eigen headers, or a compile error)."""


class MissingDependencyError(AdaSpringError, ImportError):
    """An optional dependency (e.g. the ``train`` extra) is needed for this feature."""


def require_training_stack(feature: str) -> None:
    """Raise :class:`MissingDependencyError` if TensorFlow / tf_keras are not importable.

    Args:
      feature: what the caller was trying to do, quoted in the message.
    """
    import importlib.util

    missing = [m for m in ("tensorflow", "tf_keras") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"{feature} needs {', '.join(missing)}; install the training extra: pip install 'tflite-adaspring[train]'"
        )


class ModelNotFoundError(AdaSpringError, FileNotFoundError):
    """A model file given on the command line does not exist; the message names the path."""


class DeviceToolError(AdaSpringError, RuntimeError):
    """An external device tool (``adb``, ``benchmark_model``) failed; the message quotes the tail of its output."""


class DeviceToolNotFoundError(DeviceToolError, FileNotFoundError):
    """An external device tool or binary is missing; the message names what was looked for and where to get it."""


class DeviceConnectionError(DeviceToolError):
    """No usable device: none attached, unauthorized, offline, or several without ``--serial``."""
