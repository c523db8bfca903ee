"""Scale-out end to end: clips prepared by the Beam engine, then `lipseq train` on two
workers (MultiWorkerMirroredStrategy over TF_CONFIG on this host), then resumed on one."""

import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from configs import demo_video
from data_prep.beam_prep import prepare_with_beam
from data_prep.synthetic.faces import write_synthetic_corpus
from pipelines.training.distribute import local_cluster
from tests.cli import train_command as lipseq_train

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
CONFIG = "configs/demo_video.py:tiny"


@pytest.fixture(scope="module")
def beam_built(tmp_path_factory):
    """Generated faces prepared by the Beam engine with the tiny demo config's settings."""
    root = tmp_path_factory.mktemp("scale_out")
    write_synthetic_corpus(root / "raw", 12, seed=3, vocabulary=demo_video.QUICK_VOCABULARY)
    data = dict(demo_video.get_config("tiny").data)
    data.update(input_dir=str(root / "raw"), prepared_dir=str(root / "data"))
    manifest = prepare_with_beam(data)
    assert manifest["splits"]["train"]["num_examples"] >= 8
    return root / "data"


def train_command(data, workdir, steps, *extra):
    return lipseq_train(CONFIG, data, workdir, steps, *extra)


def test_two_workers_train_on_beam_built_clips_and_one_resumes(beam_built, tmp_path):
    workdir = tmp_path / "run"
    workers = []
    for tf_config in local_cluster(2):
        command = train_command(beam_built, workdir, 4, "--strategy=multi_worker")
        env = {**ENV, "TF_CONFIG": tf_config}
        workers.append(subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True))
    for worker in workers:
        _, stderr = worker.communicate(timeout=900)
        assert worker.returncode == 0, stderr[-3000:]
    chief = tf.train.latest_checkpoint(str(workdir / "checkpoints"))
    other = tf.train.latest_checkpoint(str(workdir / "workers" / "1" / "checkpoints"))
    assert chief.endswith("ckpt-4") and other.endswith("ckpt-4")
    # Batch norm's moving statistics follow each worker's own batches (the chief's are the
    # run's); every trained weight and optimizer slot is the same on both.
    ours, theirs = tf.train.load_checkpoint(chief), tf.train.load_checkpoint(other)
    trained = [
        name
        for name in ours.get_variable_to_shape_map()
        if name.startswith(("model/", "optimizer/")) and "moving_" not in name
    ]
    assert len(trained) > 30
    for name in trained:
        np.testing.assert_array_equal(ours.get_tensor(name), theirs.get_tensor(name), name)

    # The chief's checkpoint is the run: one worker picks it up and goes on.
    resumed = subprocess.run(
        train_command(beam_built, workdir, 6), env=ENV, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((workdir / "train_summary.json").read_text())
    assert (summary["start_step"], summary["final_step"]) == (4, 6)
    latest = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(workdir / "checkpoints")))
    moved = [
        name
        for name in trained
        if not np.array_equal(latest.get_tensor(name), ours.get_tensor(name))
    ]
    assert len(moved) > 10, "the resumed run did not train the chief's weights on"
