"""The lip-reading throughput bench compares models of the size it says they are."""

import numpy as np

from bench.lipreading_bench import (
    GRAY80_CROPPED,
    LIPNET_SIZE,
    REPLICA_PARAMETERS,
    RGB,
    _model,
    count_parameters,
    random_batch,
    training_step,
)
from bench.quality_bench import lipnet_replica
from data_prep.characters import CharVocabulary


def test_the_equal_size_row_has_the_replicas_parameter_count():
    vocab_size = CharVocabulary().size
    replica = lipnet_replica(vocab_size).count_params()
    equal = count_parameters(_model(RGB, vocab_size, **REPLICA_PARAMETERS))
    layers_only = count_parameters(_model(RGB, vocab_size, **LIPNET_SIZE))
    # Within half a percent of the replica; LipNet's layers plus a decoder are a fifth larger.
    assert abs(equal - replica) / replica < 0.005
    assert layers_only > 1.15 * replica


def test_the_recipe_trains_on_the_bench_batch():
    # The bench times the recipe's own objective, guided attention included, so its batch
    # carries every input that objective reads.
    vocab_size = CharVocabulary().size
    step = training_step(_model(GRAY80_CROPPED, vocab_size))
    assert np.isfinite(step(random_batch(GRAY80_CROPPED, vocab_size)).numpy())


def test_interleaved_timing_takes_turns_within_each_round():
    from bench.lipreading_bench import interleaved_seconds

    order = []

    class Result:
        """A call's result; the timer must fetch it (wait for the device) before stopping."""

        def __init__(self, name):
            self.name = name

        def numpy(self):
            order.append(f"{self.name} fetched")

    def call(name):
        order.append(name)
        return Result(name)

    seconds = interleaved_seconds(
        {"a": lambda: call("a"), "b": lambda: call("b")}, rounds=3, steps=2
    )
    assert order == ["a", "a fetched", "a", "a fetched", "b", "b fetched", "b", "b fetched"] * 3
    assert {name: len(values) for name, values in seconds.items()} == {"a": 3, "b": 3}


def test_the_step_breakdown_subtracts_within_each_round():
    from bench.lipreading_bench import breakdown_of

    # Round 2 is slow for every part; medians of separate parts would mix rounds.
    seconds = {"frontend": [1.0, 2.0, 1.1], "encoder": [1.5, 3.0, 1.7], "all": [2.0, 4.0, 2.0]}
    stages = breakdown_of(seconds)
    assert stages["encoder"] == {"median": 0.6, "min": 0.5, "max": 1.0}
    assert stages["attention_decoder_and_ctc"] == {"median": 0.5, "min": 0.3, "max": 1.0}
    assert stages["whole_step"]["median"] == 2.0


def test_ratios_are_taken_within_each_round():
    from bench.common import ratio_spread

    # Median of the per-round ratios (2, 2, 2), not the ratio of medians (4 / 2).
    assert ratio_spread([2.0, 4.0, 8.0], [1.0, 2.0, 4.0]) == {"median": 2.0, "min": 2.0, "max": 2.0}
    # Per-round ratios 3, 1, 4: median 3, where the ratio of medians would read 4 / 2 = 2.
    assert ratio_spread([3.0, 4.0, 8.0], [1.0, 4.0, 2.0])["median"] == 3.0


def test_layers_built_under_the_bench_policy_compute_in_it_and_the_policy_is_restored():
    import keras

    from pipelines.training.precision import keras_policy

    before = keras.config.dtype_policy().name
    with keras_policy("mixed_bfloat16"):
        layer = keras.layers.Dense(4)
    assert keras.config.dtype_policy().name == before
    assert layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32"
