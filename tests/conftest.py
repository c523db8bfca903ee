import pytest
from hypothesis import settings

from data_prep.paths import DATA_DIR_ENV, shared_data_dir

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
