"""Search space: Config ids, JSON round-trip, validation errors, sampling, encoding, neighbours."""

import random

import pytest

from tflite_adaspring.errors import ConfigError, SchemaVersionError
from tflite_adaspring.space import BlockChoice, Config, SearchSpace

SPACE = SearchSpace("test_space", 1, blocks_per_stage=(2, 1))


def test_size_counts_skipped_blocks_once():
    # per stage: 12 (depth 1) + 144 (depth 2); stage 2: 12; times 4 ranks x 3 precisions
    assert SPACE.size == (12 + 144) * 12 * 4 * 3


def test_enumerate_matches_size_and_is_distinct():
    small = SearchSpace("tiny", 1, (1,), ops=("std",), widths=(0.5, 1.0), head_ranks=(1.0,), precisions=("fp32",))
    configs = list(small.enumerate())
    assert len(configs) == small.size == 2
    assert len(set(configs)) == len(configs)


def test_id_round_trip_and_example():
    config = Config(((BlockChoice("std", 1.0), BlockChoice("dws", 0.5)), (BlockChoice("fire", 0.25),)), 0.5, "fp16")
    assert config.id == "s100.d50/f25-r50-fp16"
    assert Config.from_id(config.id) == config
    smallest = SPACE.smallest()
    assert smallest.id.endswith("-r12p5-fp32")
    assert SPACE.validate(Config.from_id(smallest.id)) == smallest


def test_json_round_trip_and_version_check():
    rng = random.Random(1)
    for _ in range(20):
        config = SPACE.sample(rng)
        assert SPACE.config_from_json(SPACE.config_to_json(config)) == config
    other = SearchSpace("test_space", 2, blocks_per_stage=(2, 1))
    with pytest.raises(SchemaVersionError, match="version 2"):
        other.config_from_json(SPACE.config_to_json(SPACE.largest()))


@pytest.mark.parametrize(
    ("config", "knob"),
    [
        (Config(((BlockChoice("conv9", 1.0),), (BlockChoice("std", 1.0),))), "stage0.block0.op"),
        (Config(((BlockChoice("std", 0.3),), (BlockChoice("std", 1.0),))), "stage0.block0.width"),
        (Config(((BlockChoice("std", 1.0),) * 3, (BlockChoice("std", 1.0),))), "stage0.depth"),
        (Config(((BlockChoice("std", 1.0),), (BlockChoice("std", 1.0),)), head_rank=0.3), "head_rank"),
        (Config(((BlockChoice("std", 1.0),), (BlockChoice("std", 1.0),)), precision="int4"), "precision"),
    ],
)
def test_bad_configs_name_the_knob_and_choices(config, knob):
    with pytest.raises(ConfigError, match=knob) as err:
        SPACE.validate(config)
    assert "choose" in str(err.value)


def test_encode_decode_round_trip():
    rng = random.Random(2)
    for _ in range(50):
        config = SPACE.sample(rng)
        codes = SPACE.encode(config)
        assert len(codes) == len(SPACE.knob_names)
        assert SPACE.decode(codes) == config


def test_sample_is_reproducible_and_covers_depths():
    a = [SPACE.sample(random.Random(7)) for _ in range(3)]
    b = [SPACE.sample(random.Random(7)) for _ in range(3)]
    assert a == b
    depths = {SPACE.sample(random.Random(s)).depths[0] for s in range(200)}
    assert depths == {1, 2}


def test_neighbours_differ_in_one_knob():
    config = SPACE.largest()
    for n in SPACE.neighbours(config):
        SPACE.validate(n)
        diff = sum(a != b for a, b in zip(SPACE.encode(config), SPACE.encode(n)))
        # removing a block also resets that block's (now meaningless) codes
        assert 1 <= diff <= 3
    assert SPACE.mutate(config, random.Random(0)) != config


def test_largest_and_smallest_are_members():
    assert SPACE.validate(SPACE.largest()).depths == (2, 1)
    assert SPACE.validate(SPACE.smallest()).depths == (1, 1)
    with pytest.raises(ConfigError):
        Config.from_id("garbage")
