"""Benchmarks behind ``adaspring bench NAME``: every figure in docs/results comes from one of these.

Each benchmark module defines ``FLAGS`` (an ``absl.flags.FlagValues``) and ``run(flag_values) -> int``,
like the CLI commands; :data:`BENCHMARKS` maps names to modules (imported only when run).
"""

BENCHMARKS: dict[str, tuple[str, str]] = {}


def register(name: str, module: str, help_text: str) -> None:
    """Adds a benchmark to :data:`BENCHMARKS`."""
    BENCHMARKS[name] = (module, help_text)
