import sys

import pytest
from hypothesis import settings

from data_prep.paths import DATA_DIR_ENV, shared_data_dir
from pipelines.runtime import use_onednn_kernels

# The suite runs on the CPU kernels the lipseq command runs on (before any test loads TensorFlow).
use_onednn_kernels()

# Property tests draw the same examples on every run, so a red CI run can be reproduced.
settings.register_profile("lipseq", derandomize=True)
settings.load_profile("lipseq")


@pytest.fixture(scope="session")
def shared_data():
    """The real corpora; tests that need them skip with the reason when absent."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real corpora not found at {root} (set {DATA_DIR_ENV} to point at them)")
    return root


def _process_wide_switches_left_on() -> list[str]:
    """TensorFlow and Keras settings that hold for the whole process and that a test left
    changed: later tests would run under them, and results would depend on the order."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return []
    # Late: only once a test has loaded TensorFlow. The query is not public in TF 2.21
    # (tf.config.experimental has enable_op_determinism only).
    from tensorflow.python.framework import config as tf_config

    left = []
    if tf_config.is_op_determinism_enabled():
        left.append("op determinism (tf.config.experimental.enable_op_determinism)")
        tf_config.disable_op_determinism()  # so that only the culprit fails
    if tf.config.functions_run_eagerly():
        left.append("tf.config.run_functions_eagerly(True)")
        tf.config.run_functions_eagerly(False)
    keras = sys.modules.get("keras")
    if keras is not None and keras.config.dtype_policy().name != "float32":
        left.append(f"Keras' global dtype policy {keras.config.dtype_policy().name}")
        keras.config.set_dtype_policy("float32")
    return left


@pytest.fixture(autouse=True)
def no_process_wide_switch_left_on():
    """Fails a test that leaves a process-wide switch on in the pytest process: run such work
    in a subprocess (tests/cli.py: run_lipseq, run_python)."""
    yield
    if left := _process_wide_switches_left_on():
        pytest.fail(f"the test left {', '.join(left)} on in the pytest process", pytrace=False)


_seconds_per_file: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Adds each test phase's time to its file, for the summary below."""
    path = report.nodeid.split("::", 1)[0]
    _seconds_per_file[path] = _seconds_per_file.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """Seconds per test file (fixtures included), slowest first: slow tests stay visible."""
    if not _seconds_per_file:
        return
    terminalreporter.write_sep("-", "seconds per test file")
    for path, seconds in sorted(_seconds_per_file.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:8.1f}  {path}")
