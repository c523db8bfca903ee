import pytest

from data_prep.paths import DATA_DIR_ENV, shared_data_dir


@pytest.fixture(scope="session")
def shared_data():
    """The real corpora; tests that need them skip with the reason when absent."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real corpora not found at {root} (set {DATA_DIR_ENV} to point at them)")
    return root
