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
