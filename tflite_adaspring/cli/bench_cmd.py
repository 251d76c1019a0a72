"""``adaspring bench NAME [--flags]``: run one benchmark (``adaspring bench`` lists them)."""

from __future__ import annotations

import importlib
import sys

from absl import flags

import tflite_adaspring.bench.registry  # noqa: F401 - fills BENCHMARKS
from tflite_adaspring.bench import BENCHMARKS

FLAGS = flags.FlagValues()
SUBCOMMAND = True  # main() hands the remaining argv to dispatch() instead of parsing flags


def usage() -> str:
    """The list of benchmarks."""
    width = max(len(n) for n in BENCHMARKS)
    lines = ["usage: adaspring bench NAME [--flags]   (adaspring bench NAME --help)", "", "benchmarks:"]
    return "\n".join(lines + [f"  {n.ljust(width)}  {h}" for n, (_, h) in BENCHMARKS.items()])


def dispatch(argv: list[str]) -> int:
    """Runs ``argv[0]`` with the flags in ``argv[1:]``.

    Args:
      argv: benchmark name followed by its flags.

    Returns:
      The exit code.
    """
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name = argv[0]
    if name not in BENCHMARKS:
        print(f"adaspring bench: unknown benchmark {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[name][0])
    fv: flags.FlagValues = module.FLAGS
    if "--help" in argv[1:] or "-h" in argv[1:]:
        print(f"usage: adaspring bench {name} [--flags]\n{BENCHMARKS[name][1]}\n")
        print(fv.get_help(include_special_flags=False))
        return 0
    fv.unparse_flags()
    try:
        rest = fv([f"adaspring bench {name}", *argv[1:]])
    except flags.Error as exc:
        print(f"adaspring bench {name}: {exc} (see adaspring bench {name} --help)", file=sys.stderr)
        return 2
    if len(rest) > 1:
        print(f"adaspring bench {name}: unexpected arguments {rest[1:]}", file=sys.stderr)
        return 2
    return int(module.run(fv) or 0)
