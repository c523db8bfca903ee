"""tf.distribute: MirroredStrategy over 2 logical CPUs, MultiWorkerMirroredStrategy over 2 local
worker processes (TF_CONFIG on 127.0.0.1), and a multi-worker checkpoint resumed on one worker."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from configs import demo_toy
from data_prep.synthetic import toy_language
from data_prep.translation import prepare_translation
from pipelines.training.distribute import local_cluster
from tests.cli import train_command
from tests.pipelines.training.resume import (
    EXACT_RESUME_FLAGS,
    assert_resumed_as_uninterrupted,
    checkpoint_differences,
)

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    config = demo_toy.get_config("tiny")
    config.data.input_dir = str(root / "raw")
    config.data.prepared_dir = str(root / "data")
    toy_language.write_corpus(config.data.input_dir, num_train=400, num_val=16, num_test=16)
    prepare_translation(config)
    return root / "data"


def _command(data, workdir, steps, *extra):
    small = (
        "--config.warmup_steps=1",
        "--config.eval_max_examples=8",
        "--config.decode.max_length=20",
    )
    return train_command("configs/demo_toy.py:tiny", data, workdir, steps, *small, *extra)


def _model_weights(checkpoint_path):
    return {
        name: tf.train.load_variable(checkpoint_path, name)
        for name, _ in tf.train.list_variables(checkpoint_path)
        if name.startswith(("model/", "optimizer/"))
    }


def stopped_at(workdir, copy, step: int) -> None:
    """A copy of a run's folder as it stood after `step`: later checkpoints and log lines
    gone, so training it again resumes from that step's checkpoint."""
    shutil.copytree(workdir, copy)
    (copy / "train_summary.json").unlink()
    checkpoints = copy / "checkpoints"
    kept = tf.train.get_checkpoint_state(str(checkpoints)).all_model_checkpoint_paths
    kept = [os.path.basename(p) for p in kept if int(p.rsplit("-", 1)[1]) <= step]
    for later in checkpoints.glob("ckpt-*"):
        if int(later.name.split("-")[1].split(".")[0]) > step:
            later.unlink()
    tf.compat.v1.train.update_checkpoint_state(
        str(checkpoints), kept[-1], all_model_checkpoint_paths=kept
    )
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    early = [x for x in lines if json.loads(x).get("step", 0) <= step]
    (copy / "metrics.jsonl").write_text("".join(x + "\n" for x in early))


def test_mirrored_strategy_on_two_logical_cpus_trains_and_resumes_exactly(prepared, tmp_path):
    """Two replicas in one process; deterministic (EXACT_RESUME_FLAGS), so the run resumed
    from its step-4 checkpoint to 6 must match the one that ran 0 -> 6."""
    mirrored = ("--strategy=mirrored", "--logical_cpus=2", *EXACT_RESUME_FLAGS)

    def train_to(workdir, steps):
        result = subprocess.run(
            _command(prepared, workdir, steps, *mirrored),
            env=ENV,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    reference, resumed = tmp_path / "uninterrupted", tmp_path / "run"
    assert "with 2 replicas" in train_to(reference, 6).stderr
    records = [
        json.loads(x)
        for x in (reference / "metrics.jsonl").read_text().split("\n")
        if x and "loss" in x
    ]
    assert len(records) == 6 and all(np.isfinite(r["loss"]) for r in records)
    # Each step reads a global batch of 16 sentences, 8 a replica: the speeds count both
    # replicas' sentences, as the examples seen do.
    seen = [r["examples_seen"] for r in records]
    assert seen == [16, 32, 48, 64, 80, 96]
    for record in records:
        per_step = record["sentences_per_second"] / record["steps_per_second"]
        assert per_step == pytest.approx(16), record

    # The run as it stood at step 4 (what a run stopped there leaves), resumed to 6.
    stopped_at(reference, resumed, 4)
    train_to(resumed, 6)
    summary = json.loads((resumed / "train_summary.json").read_text())
    assert (summary["start_step"], summary["final_step"]) == (4, 6)
    assert_resumed_as_uninterrupted(tmp_path / "uninterrupted", tmp_path / "run", 4, 6)


def test_multi_worker_runs_agree_and_resume_on_one_worker(prepared, tmp_path):
    workdir = tmp_path / "run"
    processes = []
    for tf_config in local_cluster(2):
        env = {**ENV, "TF_CONFIG": tf_config}
        processes.append(
            subprocess.Popen(
                _command(prepared, workdir, 4, "--strategy=multi_worker"),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for process in processes:
        _, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr[-3000:]
    chief = tf.train.latest_checkpoint(str(workdir / "checkpoints"))
    other = tf.train.latest_checkpoint(str(workdir / "workers" / "1" / "checkpoints"))
    assert chief.endswith("ckpt-4") and other.endswith("ckpt-4")
    chief_weights, other_weights = _model_weights(chief), _model_weights(other)
    assert chief_weights.keys() == other_weights.keys() and len(chief_weights) > 10
    for name, value in chief_weights.items():
        np.testing.assert_array_equal(value, other_weights[name], err_msg=name)

    # Resumed on one worker and saved again without a step (num_train_steps reached), the
    # model weights and the optimizer's state are the two workers' (a run on one worker cannot
    # be compared with one on two: each worker reads its own shard of the records).
    again = tmp_path / "saved_again"
    shutil.copytree(workdir, again)
    single = subprocess.run(
        _command(prepared, again, 4), env=ENV, capture_output=True, text=True, timeout=900
    )
    assert single.returncode == 0, single.stderr[-3000:]
    resaved = tf.train.latest_checkpoint(str(again / "checkpoints"))
    assert resaved.endswith("ckpt-4")
    differences = checkpoint_differences(chief, resaved, only="optimizer/")
    assert not differences, f"restored on one worker, {len(differences)} differ: {differences[:3]}"

    single = subprocess.run(
        _command(prepared, workdir, 6), env=ENV, capture_output=True, text=True, timeout=900
    )
    assert single.returncode == 0, single.stderr[-3000:]
    summary = json.loads((workdir / "train_summary.json").read_text())
    assert summary["start_step"] == 4 and summary["final_step"] == 6
