"""The task is the one seam: a new task (tests/tiny_task.py) plus one registry entry runs
through preparation, the shared training loop, export, evaluation and the `lipseq` command."""

import json
import os
import subprocess
import sys

import pytest

from data_prep.errors import ConfigError
from data_prep.paths import PROJECT_ROOT
from pipelines.evaluation import evaluate_export
from pipelines.serving.export import export_model
from pipelines.tasks import REGISTRY, register_task, task_class, task_for
from pipelines.training.loop import train
from tests import tiny_task


@pytest.fixture
def reverse_task():
    register_task("reverse", "tests.tiny_task:ReverseTask")
    yield
    REGISTRY.pop("reverse", None)


def test_a_registered_task_trains_exports_and_evaluates(reverse_task, tmp_path):
    config = tiny_task.get_config()
    config.data.prepared_dir = str(tmp_path / "data")
    task_for(config).prepare()
    summary = train(config, tmp_path / "train")
    assert summary["final_step"] == config.num_train_steps
    metrics = [json.loads(line) for line in (tmp_path / "train" / "metrics.jsonl").open()]
    assert any("val_accuracy" in m for m in metrics)
    assert "best_val_accuracy" in summary
    export_model(tmp_path / "train", tmp_path / "export")
    report, lines, path = evaluate_export(saved_model=tmp_path / "export")
    # Reversing 2-5 digits by chance is right about once in 10^3.5; the model learns it.
    assert report["summary"]["accuracy"] > 50.0, report["examples"][:5]
    assert lines[0].startswith("accuracy = ") and path.name == "eval_test.json"


def test_the_lipseq_command_runs_a_registered_task(tmp_path):
    code = (
        "from pipelines.tasks import register_task\n"
        "register_task('reverse', 'tests.tiny_task:ReverseTask')\n"
        "import sys\n"
        "from pipelines.cli import main\n"
        "main(['lipseq', *sys.argv[1:]])\n"
    )
    common = [f"--config.data.prepared_dir={tmp_path / 'data'}", "--config.num_train_steps=4"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for verb in (
        ["prepare", "--config=tests/tiny_task.py", *common[:1]],
        ["train", "--config=tests/tiny_task.py", f"--workdir={tmp_path / 'train'}", *common],
    ):
        done = subprocess.run(
            [sys.executable, "-c", code, *verb],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "train" / "train_summary.json").read_text())
    assert summary["final_step"] == 4


def test_an_unknown_task_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown task 'nope'; known: .*lipreading.*translation"):
        task_class("nope")
