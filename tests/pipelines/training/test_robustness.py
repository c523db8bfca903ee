"""Crash safety, NaN/Inf handling, determinism and config errors of the training binary."""

import json
import math
import os
import signal
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from configs import demo_toy
from data_prep.paths import PROJECT_ROOT
from data_prep.synthetic import toy_language
from data_prep.translation import prepare_translation
from models import seq2seq as seq2seq_module
from pipelines.training.loop import NonFiniteLossError, train
from tests.cli import run_lipseq, run_python
from tests.pipelines.training.resume import (
    EXACT_RESUME_FLAGS,
    assert_resumed_as_uninterrupted,
    losses_by_step,
)


def tiny_config(root):
    config = demo_toy.get_config("tiny")
    config.data.input_dir = str(root / "raw")
    config.data.prepared_dir = str(root / "data")
    return config


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust")
    config = tiny_config(root)
    toy_language.write_corpus(config.data.input_dir, num_train=600, num_val=20, num_test=20)
    prepare_translation(config)
    return root


def _poison(monkeypatch, bad_calls, gradient: bool = False):
    """On the given (1-based) train-step calls, makes the training loss NaN, or (gradient)
    keeps the loss finite and makes its gradient infinite."""
    original = seq2seq_module.sequence_cross_entropy
    calls = tf.Variable(0, dtype=tf.int64)
    bad = tf.constant(sorted(bad_calls), tf.int64)

    def poisoned(*args, **kwargs):
        total, count = original(*args, **kwargs)
        calls.assign_add(1)
        hit = tf.reduce_any(tf.equal(bad, calls))
        if not gradient:
            return tf.where(hit, tf.constant(math.nan), total), count

        @tf.custom_gradient
        def infinite_gradient(x):
            def grad(upstream):
                return tf.where(hit, tf.constant(math.inf, upstream.dtype), upstream)

            return tf.identity(x), grad

        return infinite_gradient(total), count

    monkeypatch.setattr(seq2seq_module, "sequence_cross_entropy", poisoned)


def _model_weights(path) -> dict:
    return {
        n: tf.train.load_variable(path, n)
        for n, _ in tf.train.list_variables(path)
        if n.startswith(("model/", "optimizer/_trainable_variables/"))
    }


def test_infinite_gradients_are_never_applied_in_float32(prepared, monkeypatch, tmp_path):
    _poison(monkeypatch, [8], gradient=True)
    config = tiny_config(prepared)
    config.checkpoint_every = 1
    with pytest.raises(NonFiniteLossError, match="at step 8"):
        train(config, tmp_path / "run")
    # The loss was finite; only the gradient was not, and the step stopped before applying it.
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("ckpt-7")


def test_mixed_precision_skips_an_overflowing_step_and_halves_the_scale(
    prepared, monkeypatch, tmp_path
):
    _poison(monkeypatch, [8], gradient=True)
    config = tiny_config(prepared)
    config.mixed_precision = "float16"
    config.checkpoint_every, config.keep_checkpoints = 1, 20
    summary = train(config, tmp_path / "run")
    assert summary["final_step"] == 12  # an overflow is not an error in mixed precision
    before, after, later = (str(tmp_path / "run" / "checkpoints" / f"ckpt-{i}") for i in (7, 8, 9))
    scale = "loss_scale/.ATTRIBUTES/VARIABLE_VALUE"
    assert tf.train.load_variable(before, scale) == 2.0**15
    assert tf.train.load_variable(after, scale) == 2.0**14
    weights_before, weights_after = _model_weights(before), _model_weights(after)
    assert weights_before.keys() == weights_after.keys() and len(weights_before) > 10
    for name, value in weights_before.items():
        np.testing.assert_array_equal(value, weights_after[name], err_msg=name)
    # The next good step updates the weights again.
    assert any(
        not np.array_equal(value, _model_weights(later)[name])
        for name, value in weights_after.items()
    )


def test_nan_stops_with_the_step_and_keeps_the_last_good_checkpoint(
    prepared, monkeypatch, tmp_path
):
    _poison(monkeypatch, range(8, 100))
    with pytest.raises(NonFiniteLossError, match="at step 8.*ckpt-5"):
        train(tiny_config(prepared), tmp_path / "run")
    path = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert path.endswith("ckpt-5")
    weights = [
        n
        for n, _ in tf.train.list_variables(path)
        if n.startswith(("model/", "optimizer/_trainable_variables/"))
    ]
    assert len(weights) > 10
    for name in weights:
        assert np.all(np.isfinite(tf.train.load_variable(path, name))), name


def test_nan_rollback_lowers_the_learning_rate_and_continues(prepared, monkeypatch, tmp_path):
    _poison(monkeypatch, [8])
    config = tiny_config(prepared)
    config.nan_policy = "rollback"
    summary = train(config, tmp_path / "run")
    assert summary["final_step"] == 12
    records = [
        json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().split("\n") if x
    ]
    rollback = [r for r in records if "nan_rollback" in r]
    assert rollback == [{"step": 5, "nan_rollback": 1, "lr_scale": 0.5}]
    assert all(math.isfinite(r["loss"]) for r in records if "loss" in r)


def test_seeded_deterministic_runs_have_identical_loss_curves_in_one_process_and_across_two(
    prepared, tmp_path
):
    # Op determinism is process-wide and cannot be scoped: the runs train in children, two
    # runs in one (nothing of the first leaks into the second) and one in another process.
    script = """
import sys
from pathlib import Path
from pipelines.runtime import use_onednn_kernels
use_onednn_kernels()
from configs import demo_toy
from pipelines.training.loop import train
root, out, *names = sys.argv[1:]
for name in names:
    config = demo_toy.get_config("tiny")
    config.data.prepared_dir = str(Path(root) / "data")
    config.deterministic = True
    train(config, Path(out) / name)
"""
    for names in (("a", "b"), ("c",)):
        completed = run_python(script, str(prepared), str(tmp_path), *names)
        assert completed.returncode == 0, completed.stderr[-3000:]
    curves = [list(losses_by_step(tmp_path / name).values()) for name in ("a", "b", "c")]
    assert len(curves[0]) == 12
    assert curves[0] == curves[1] == curves[2]


def _train_args(config_root, workdir, steps, extra=()):
    """`lipseq train` arguments for the tiny toy config on the prepared data."""
    return [
        "train",
        "--config=configs/demo_toy.py:tiny",
        f"--workdir={workdir}",
        f"--config.data.prepared_dir={config_root / 'data'}",
        f"--config.num_train_steps={steps}",
        "--config.checkpoint_every=10",
        "--config.eval_every=0",
        "--config.record_batch_ids=True",
        *extra,
    ]


def _batches(workdir):
    order = {}
    for line in (workdir / "batch_ids.jsonl").read_text().split("\n"):
        if line:
            record = json.loads(line)
            order[record["step"]] = record["ids"]  # a rerun overwrites repeated steps
    return order


def test_sigkill_mid_epoch_resumes_the_model_the_optimizer_and_the_data_order(prepared, tmp_path):
    # 600 pairs / 16 a batch: an epoch is about 40 batches. Checkpoints every 10 steps: killed
    # after step 25, the run loses 5 steps and resumes mid-epoch from step 20.
    steps, kill_step, saved_step = 60, 25, 20
    extra = ["--config.log_every=1", *EXACT_RESUME_FLAGS]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    completed = run_lipseq(*_train_args(prepared, reference, steps, extra), timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    crash = subprocess.run(
        [sys.executable, "-m", "tests.pipelines.training.resume", str(kill_step)]
        + _train_args(prepared, killed, steps, extra),
        cwd=PROJECT_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    # The run was really killed, after the step asked and no later.
    assert crash.returncode == -signal.SIGKILL, crash.stderr[-3000:]
    assert not (killed / "train_summary.json").exists()
    assert max(losses_by_step(killed)) == kill_step
    latest = tf.train.latest_checkpoint(str(killed / "checkpoints"))
    assert latest and latest.endswith(f"ckpt-{saved_step}"), latest
    resumed = run_lipseq(*_train_args(prepared, killed, steps, extra), timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((killed / "train_summary.json").read_text())
    assert summary["start_step"] == saved_step and summary["final_step"] == steps
    assert _batches(killed) == _batches(reference)
    assert_resumed_as_uninterrupted(reference, killed, saved_step, steps)


def _train_cli_with(override: str) -> subprocess.CompletedProcess:
    """lipseq train on the demo config with one --config override (fails before training)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines",
            "train",
            "--config=configs/demo_toy.py",
            "--workdir=/nonexistent",
            override,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_unknown_config_key_lists_valid_keys():
    result = _train_cli_with("--config.model.atention=luong")
    assert result.returncode == 2
    assert "unknown config key config.model.atention" in result.stderr
    assert "attention" in result.stderr and "Traceback" not in result.stderr


def test_wrong_config_type_names_key_and_type():
    result = _train_cli_with("--config.batch_size=many")
    assert result.returncode == 2
    assert "config.batch_size expects int" in result.stderr and "'many'" in result.stderr


def test_mixed_precision_trains_with_a_loss_scale(prepared, tmp_path):
    import keras

    config = tiny_config(prepared)
    config.mixed_precision = "float16"
    config.num_train_steps = 4
    summary = train(config, tmp_path / "run")
    assert summary["final_step"] == 4
    assert keras.config.dtype_policy().name == "float32"  # restored after training
    path = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    # No step overflowed: the scale is still the initial one (an overflow halves it, below).
    assert tf.train.load_variable(path, "loss_scale/.ATTRIBUTES/VARIABLE_VALUE") == 2.0**15
    weights = [
        n
        for n, _ in tf.train.list_variables(path)
        if n.startswith(("model/", "optimizer/_trainable_variables/"))
    ]
    assert weights and all(tf.train.load_variable(path, n).dtype == np.float32 for n in weights)
    records = [
        json.loads(x)
        for x in (tmp_path / "run" / "metrics.jsonl").read_text().split("\n")
        if x and "loss" in x
    ]
    assert all(math.isfinite(r["loss"]) for r in records)


def test_weight_decay_shrinks_kernels_only_and_keeps_adam_checkpoints_loadable(tmp_path):
    import keras

    from pipelines.training.optimizer import make_optimizer

    def model():
        keras.utils.set_random_seed(0)
        net = keras.Sequential([keras.layers.Dense(3), keras.layers.BatchNormalization()])
        net.build((None, 2))
        net.layers[1].gamma.assign([2.0, 2.0, 2.0])
        net.layers[1].beta.assign([1.0, 1.0, 1.0])
        net.layers[0].bias.assign([1.0, 1.0, 1.0])
        return net

    def one_step_without_gradient(weight_decay):
        config = ml_collections.ConfigDict({"weight_decay": weight_decay})
        net = model()
        optimizer = make_optimizer(config, 0.5)
        before = [v.numpy() for v in net.trainable_variables]
        optimizer.apply_gradients([(tf.zeros_like(v), v) for v in net.trainable_variables])
        return optimizer, net, before, [v.numpy() for v in net.trainable_variables]

    adam, net, before, after = one_step_without_gradient(0.0)
    assert type(adam) is keras.optimizers.Adam
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    adamw, _, before, after = one_step_without_gradient(0.1)
    assert isinstance(adamw, keras.optimizers.AdamW)
    kernel, bias, gamma, beta = zip(before, after, strict=True)
    np.testing.assert_allclose(kernel[1], kernel[0] * (1 - 0.5 * 0.1), rtol=1e-6)
    for unchanged in (bias, gamma, beta):
        assert np.array_equal(*unchanged)
    saved = tf.train.Checkpoint(model=net, optimizer=adam).save(str(tmp_path / "adam"))
    fresh = model()
    switched = make_optimizer(ml_collections.ConfigDict({"weight_decay": 0.1}), 0.5)
    switched.build(fresh.trainable_variables)
    tf.train.Checkpoint(model=fresh, optimizer=switched).restore(saved).assert_consumed()


def test_budgeted_schedule_follows_the_larger_of_steps_and_time():
    import keras

    from pipelines.training.schedules import BudgetedSchedule

    base = keras.optimizers.schedules.CosineDecay(1.0, decay_steps=100, alpha=0.0)
    fraction = tf.Variable(0.0, dtype=tf.float64)
    schedule = BudgetedSchedule(base, fraction, total_steps=100)
    assert float(schedule(10)) == pytest.approx(float(base(10)))
    fraction.assign(0.5)  # half the time is gone after 10 steps: the rate is at mid-schedule
    assert float(schedule(10)) == pytest.approx(float(base(50)))
    assert float(schedule(80)) == pytest.approx(float(base(80)))  # steps ahead of time
    fraction.assign(1.0)
    assert float(schedule(10)) == pytest.approx(0.0, abs=1e-6)


def test_a_time_budget_anneals_the_rate_and_holds_across_resumes(prepared, tmp_path):
    from pipelines.training.schedules import learning_rate_schedule

    config = tiny_config(prepared)
    config.num_train_steps = config.decay_steps = 10**6  # far more than the budget allows
    config.max_train_minutes = 0.25
    config.log_every = 1
    summary = train(config, tmp_path / "run")
    assert summary["stop_reason"].startswith("reached max_train_minutes")
    assert summary["final_step"] < 10**5
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").open()]
    logged = [r for r in records if "learning_rate" in r]
    # Each logged rate is the step schedule at max(step, elapsed fraction x total steps),
    # whatever the speed of this machine: the schedule follows the clock, not the steps.
    steps_schedule = learning_rate_schedule(config)
    total = config.warmup_steps + config.decay_steps
    for record in logged:
        fraction = min(1.0, record["train_minutes"] / config.max_train_minutes)
        expected = float(steps_schedule(max(record["step"], fraction * total)))
        assert record["learning_rate"] == pytest.approx(expected, abs=0.02 * config.learning_rate)
    # By steps alone the cosine would still be at its peak; by the budget it has annealed.
    assert float(steps_schedule(summary["final_step"])) > 0.99 * config.learning_rate
    assert logged[-1]["learning_rate"] < 0.2 * config.learning_rate
    # It stopped because the clock reached the budget (how far past it depends on the host).
    assert summary["run_train_minutes"] >= config.max_train_minutes
    # Buckets end epochs with partial batches, so at most batch_size examples a step.
    full = summary["final_step"] * config.batch_size
    assert 0.5 * full < summary["examples_seen"] <= full
    again = train(config, tmp_path / "run")
    assert again["start_step"] == again["final_step"] == summary["final_step"]
    assert "before this run" in again["stop_reason"]


def _losses(workdir):
    records = [json.loads(x) for x in (workdir / "metrics.jsonl").open()]
    return [r["loss"] for r in records if "loss" in r]


@pytest.fixture(scope="module")
def pretrained(prepared, tmp_path_factory):
    from pipelines.serving.export import export_model

    root = tmp_path_factory.mktemp("pretrained")
    config = tiny_config(prepared)
    config.num_train_steps = 60
    config.eval_every = 0
    train(config, root / "train")
    return root / "train", export_model(root / "train", root / "export")


@pytest.mark.parametrize("source", ["workdir", "export"])
def test_training_can_start_from_trained_weights(prepared, pretrained, tmp_path, source):
    fresh = _losses(pretrained[0])
    config = tiny_config(prepared)
    config.num_train_steps = 3
    config.init_from = str(pretrained[0] if source == "workdir" else pretrained[1])
    summary = train(config, tmp_path / "adapted")
    adapted = _losses(tmp_path / "adapted")
    assert summary["start_step"] == 0  # a new run: step, optimizer and data order start afresh
    # It starts where the pretrained run ended, far below where that run began.
    assert adapted[0] < fresh[0] - 1.0 and adapted[0] < fresh[-1] + 0.5, (fresh, adapted)


def test_the_frontend_can_be_held_still_while_adapting(prepared, pretrained, tmp_path):
    config = tiny_config(prepared)
    config.num_train_steps = config.checkpoint_every = 4
    config.init_from = str(pretrained[0])
    config.freeze_frontend_steps = 4
    train(config, tmp_path / "frozen")
    from pipelines.training.restore import restore_model

    _, _, before, _ = restore_model(pretrained[0], "latest")
    _, _, after, _ = restore_model(tmp_path / "frozen", "latest")
    for old, new in zip(before.frontend.weights, after.frontend.weights, strict=True):
        np.testing.assert_array_equal(old.numpy(), new.numpy())
    assert any(
        not np.array_equal(old.numpy(), new.numpy())
        for old, new in zip(before.decoder.weights, after.decoder.weights, strict=True)
    )


def test_initialising_from_a_mismatched_model_names_the_source(prepared, pretrained, tmp_path):
    from data_prep.errors import ConfigError

    config = tiny_config(prepared)
    config.model.decoder_units = 48
    config.init_from = str(pretrained[0])
    with pytest.raises(ConfigError, match="cannot initialise from .*do not fit"):
        train(config, tmp_path / "mismatch")
