"""Entry point of the ``adaspring`` console script.

Usage: ``adaspring COMMAND [--flags]``. Every command module defines its own ``absl.flags.FlagValues``
and a ``run(flag_values) -> int`` function; modules are imported only when their command runs, so
``adaspring datasets`` never imports TensorFlow.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from absl import flags, logging

from tflite_adaspring.errors import AdaSpringError

# command -> (module, one-line help). Later commands are added here as they land.
COMMANDS: dict[str, tuple[str, str]] = {
    "datasets": ("tflite_adaspring.cli.datasets_cmd", "List the offline tasks, their availability and shapes."),
    "space": ("tflite_adaspring.cli.space_cmd", "Knobs, size and MAC/param range of a task's search space."),
    "train": ("tflite_adaspring.cli.train_cmd", "Ensemble-train a supernet on a task into a run folder."),
    "demo": ("tflite_adaspring.cli.demo_cmd", "Train, export and replay a simulated day on the default task."),
    "bench": ("tflite_adaspring.cli.bench_cmd", "Run a benchmark (adaspring bench lists them)."),
    "profile": ("tflite_adaspring.cli.profile_cmd", "Measure this device's per-operator latency table (lut.json)."),
    "export": ("tflite_adaspring.cli.export_cmd", "Search a run's space and export K configurations in one .tflite."),
    "inspect": ("tflite_adaspring.cli.inspect_cmd", "Signature table and accuracy-latency front of an exported model."),
}


def _usage() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = ["usage: adaspring COMMAND [--flags]   (adaspring COMMAND --help for its flags)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a sub-command.

    Args:
      argv: the full argument vector (``sys.argv`` when None).

    Returns:
      The process exit code.
    """
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if len(argv) >= 2 else 2
    command = argv[1]
    if command not in COMMANDS:
        print(f"adaspring: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    if getattr(module, "SUBCOMMAND", False):
        return _run_guarded(command, lambda: module.dispatch(argv[2:]))
    flag_values: flags.FlagValues = module.FLAGS
    if "--help" in argv[2:] or "-h" in argv[2:]:
        print(f"usage: adaspring {command} [--flags]\n{COMMANDS[command][1]}\n")
        print(flag_values.get_help(include_special_flags=False))
        return 0
    flag_values.unparse_flags()  # a second main() in one process must not inherit the first's values
    try:
        rest = flag_values([f"adaspring {command}", *argv[2:]])
    except flags.Error as exc:
        print(f"adaspring {command}: {exc} (see adaspring {command} --help)", file=sys.stderr)
        return 2
    if len(rest) > 1:
        print(f"adaspring {command}: unexpected arguments {rest[1:]}", file=sys.stderr)
        return 2
    return _run_guarded(command, lambda: module.run(flag_values))


def _run_guarded(command: str, fn: Callable[[], int | None]) -> int:
    """Runs a command, turning validation and package errors into a message and an exit code."""
    logging.use_absl_handler()
    try:
        return int(fn() or 0)
    except flags.ValidationError as exc:
        print(f"adaspring {command}: {exc} (see adaspring {command} --help)", file=sys.stderr)
        return 2
    except AdaSpringError as exc:
        print(f"adaspring {command}: error: {exc}", file=sys.stderr)
        return 1


def console_main() -> None:
    """``adaspring`` console-script wrapper around :func:`main`."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
