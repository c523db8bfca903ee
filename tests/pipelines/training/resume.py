"""What the resume tests share: a crash at an exact step, and the check that a resumed run
trained exactly as an uninterrupted one.

    python -m tests.pipelines.training.resume STEP train --config=... --workdir=...

runs the `lipseq` command and kills it with SIGKILL right after its training step STEP, as an
out-of-memory kill or a power cut would: no clean-up, no final checkpoint. The fault is
injected from outside the product, in that process only, by wrapping the loop's per-step
method; so the kill lands on the same step on a fast host and a slow one, where polling for a
checkpoint from outside raced the run.
"""

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

# The resumed and the uninterrupted run must draw the same numbers: seeded op determinism, and
# no dropout, whose random state (Keras' SeedGenerator) is not in the checkpoint, so a resumed
# run draws other masks than an uninterrupted one after the resumed step.
EXACT_RESUME_FLAGS = ("--config.deterministic=True", "--config.model.dropout=0.0")

# Checkpoint keys that hold wall-clock measurements, not training state.
WALL_CLOCK_KEYS = frozenset({"train_seconds/.ATTRIBUTES/VARIABLE_VALUE"})


def losses_by_step(workdir: Path) -> dict[int, float]:
    """{step: logged loss} from metrics.jsonl; a resumed run's record of a step replaces the
    record the interrupted run wrote for it."""
    losses = {}
    for line in (Path(workdir) / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            losses[record["step"]] = record["loss"]
    return losses


def checkpoint_differences(reference: str, resumed: str, only: str = "") -> list[str]:
    """The variables of two checkpoints (those whose key starts with `only`) that are not bit
    for bit equal (NaN equals NaN), but the wall-clock ones; asserts that the model weights
    and the optimizer slots are among them.

    A Keras 3 model reaches the checkpoint through its optimizer: the weights are saved as
    optimizer/_trainable_variables/<i>, Adam's moments as optimizer/_variables/<i>, and the
    run's counters (epoch, batch_in_epoch, loss scale, ...) at the top.
    """
    import tensorflow as tf  # late: `python -m` of this module must not load it before lipseq

    ref, res = tf.train.load_checkpoint(reference), tf.train.load_checkpoint(resumed)
    names = set(ref.get_variable_to_shape_map())
    if names != set(res.get_variable_to_shape_map()):
        return [f"variable names differ: {sorted(names ^ set(res.get_variable_to_shape_map()))}"]
    weights = [n for n in names if n.startswith("optimizer/_trainable_variables/")]
    slots = [n for n in names if n.startswith("optimizer/_variables/")]
    assert len(weights) > 10 and len(slots) == 2 * len(weights), sorted(names)
    differences = []
    compared = {n for n in names if n.startswith(only)} - WALL_CLOCK_KEYS
    for name in sorted(compared - {"_CHECKPOINTABLE_OBJECT_GRAPH"}):
        a, b = ref.get_tensor(name), res.get_tensor(name)
        numeric = np.issubdtype(np.asarray(a).dtype, np.number)
        if not np.array_equal(a, b, equal_nan=numeric):
            gap = np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))) if numeric else "-"
            differences.append(f"{name} (max |difference| {gap})")
    return differences


def assert_resumed_as_uninterrupted(
    reference: Path, resumed: Path, resumed_from: int, final_step: int
) -> None:
    """The resumed run logged the reference's losses after `resumed_from`, bit for bit, and
    its final checkpoint holds the reference's variables: model weights, optimizer slots and
    counters.

    Exact equality is the right tolerance: both runs are seeded, deterministic (op
    determinism, no dropout) and run the same kernels on the same batches, so any difference
    means the resume restored something other than what was saved.
    """
    import tensorflow as tf  # late, as above

    expected, got = losses_by_step(reference), losses_by_step(resumed)
    after = sorted(s for s in expected if s > resumed_from)
    assert after and after[-1] == final_step, (resumed_from, sorted(expected))
    losses = [
        f"step {s}: {got.get(s)} instead of {expected[s]}"
        for s in after
        if got.get(s) != expected[s]
    ]
    paths = [tf.train.latest_checkpoint(str(Path(d) / "checkpoints")) for d in (reference, resumed)]
    assert all(p and p.endswith(f"ckpt-{final_step}") for p in paths), paths
    variables = checkpoint_differences(*paths)
    assert not losses and not variables, (
        f"the run resumed from step {resumed_from} differs from the uninterrupted run: "
        f"{len(losses)} of {len(after)} losses after the resume ({losses[:3]}); "
        f"{len(variables)} variables of the final checkpoint ({variables[:3]})"
    )


def kill_after_step(step: int) -> None:
    """Makes this process SIGKILL itself right after training step `step` (its checkpoint
    and log lines, when the step has them, are written)."""
    from pipelines.training import loop

    train_on = loop._Run._train_on

    def train_on_then_die(run, batch):
        after = train_on(run, batch)
        if run.step == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return after

    loop._Run._train_on = train_on_then_die


if __name__ == "__main__":
    from pipelines.runtime import keep_large_buffers_off_the_heap, use_onednn_kernels

    # As the lipseq command does, before anything imports TensorFlow: the same kernels.
    keep_large_buffers_off_the_heap()
    use_onednn_kernels()
    kill_after_step(int(sys.argv[1]))
    from pipelines.cli import main

    main(["lipseq", *sys.argv[2:]])
