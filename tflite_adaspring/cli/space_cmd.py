"""``adaspring space``: the knobs, choices, size and cost range of a task's search space."""

from __future__ import annotations

import json
import random
from typing import Any

from absl import flags

from tflite_adaspring.cli.task_flags import define_task_flags, load_task

FLAGS = flags.FlagValues()
define_task_flags(FLAGS)
flags.DEFINE_boolean("json", False, "Print JSON instead of a table.", flag_values=FLAGS)
flags.DEFINE_integer("samples", 200, "Random configs sampled for the cost distribution.", flag_values=FLAGS)


def describe_space(task_data: Any, samples: int = 200, seed: int = 0) -> dict[str, Any]:
    """Knobs, size and the params/MACs range of the default supernet for a loaded task.

    Args:
      task_data: a loaded ``Dataset``.
      samples: random configs to sample for the distribution.
      seed: sampling seed.

    Returns:
      A JSON-serialisable description.
    """
    from tflite_adaspring.supernet import build_supernet

    sn = build_supernet(task_data.spec)
    space = sn.space
    rng = random.Random(seed)
    largest, smallest = sn.cost(space.largest()), sn.cost(space.smallest())
    sampled = [sn.cost(space.sample(rng)) for _ in range(samples)]
    macs = [c.macs for c in sampled] + [largest.macs, smallest.macs]
    params = [c.params for c in sampled] + [largest.params, smallest.params]
    return {
        "task": task_data.spec.task,
        "input_shape": list(task_data.spec.input_shape),
        "num_classes": task_data.spec.num_classes,
        "space": space.to_json(),
        "knobs": {name: _choices(space, name) for name in space.knob_names},
        "largest": {"id": space.largest().id, **largest.summary()},
        "smallest": {"id": space.smallest().id, **smallest.summary()},
        "macs_range": [min(macs), max(macs)],
        "params_range": [min(params), max(params)],
        "macs_ratio": max(macs) / min(macs),
        "sampled_configs": samples,
    }


def _choices(space: Any, knob: str) -> list[Any]:
    if knob.endswith(".depth"):
        stage = int(knob.split(".")[0].removeprefix("stage"))
        return list(range(space.min_depth, space.blocks_per_stage[stage] + 1))
    if knob.endswith(".op"):
        return list(space.ops)
    if knob.endswith(".width"):
        return list(space.widths)
    return list(space.head_ranks if knob == "head_rank" else space.precisions)


def run(fv: flags.FlagValues) -> int:
    """Prints the space description."""
    info = describe_space(load_task(fv), samples=fv.samples)
    if fv.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"task {info['task']}: input {tuple(info['input_shape'])}, {info['num_classes']} classes")
    print(f"space {info['space']['name']} v{info['space']['version']}: {info['space']['size']:,} configurations")
    width = max(len(k) for k in info["knobs"])
    for name, choices in info["knobs"].items():
        print(f"  {name.ljust(width)}  {choices}")
    for end in ("largest", "smallest"):
        c = info[end]
        print(f"{end:>8}: {c['id']:<40} params {c['params']:>9,}  MACs {c['macs']:>12,}")
    print(f"MACs range {info['macs_range'][0]:,} .. {info['macs_range'][1]:,} ({info['macs_ratio']:.1f}x)")
    return 0
