"""The export's front door on the shipped release: its catalogue, built from the names of an
export made before catalogues existed, the modes it offers, and the errors that name what it
has instead."""

import pytest

from data_prep.errors import ConfigError
from pipelines.artifacts.exports import read_catalogue, read_export_info, released_models
from pipelines.inference.lipreading import LipReadingExport, preparation_settings

pytestmark = pytest.mark.skipif(
    "grid_s1" not in released_models(), reason="no grid_s1 release in models/releases"
)
MODES = ["attention", "ctc_beam", "ctc_greedy", "joint"]


@pytest.fixture(scope="module")
def export():
    return LipReadingExport("grid_s1")


def test_an_export_without_a_catalogue_gets_one_from_its_names():
    info = read_export_info("grid_s1")
    assert "catalogue" not in info  # made before catalogues: the names are read once, here
    catalogue = read_catalogue(info)
    assert set(catalogue) == set(info["signatures"])
    entry = catalogue["ctc_beam_grammar"]
    assert (entry.modality, entry.mode, entry.grammar, entry.fusion) == (
        "video",
        "ctc_beam",
        True,
        False,
    )
    assert entry.inputs == ("frames", "lengths")
    assert catalogue["serving_default"].mode == info["serving_default"] == "attention"


def test_the_front_door_offers_the_catalogue_and_names_what_is_missing(export):
    assert export.modes() == MODES and export.grammar_modes() == MODES
    assert export.entry().name == "attention" and export.entry(grammar=True).grammar
    assert export.entry("ctc_greedy", grammar=True).name == "ctc_greedy_grammar"
    with pytest.raises(ConfigError, match="no 'beam' for video; its modes: attention, ctc_beam"):
        export.entry("beam")
    with pytest.raises(ConfigError, match="reads video; not --modality=audio"):
        export.entry(modality="audio")


def test_preparation_follows_the_prepared_data_not_the_stored_config():
    info = read_export_info("grid_s1")
    stored = dict(info["prep"], detector="facetrack")
    settings = preparation_settings({**info, "prep": stored})
    assert settings.detector == "facetrack" and settings.preset == info["prep"]["preset"]
    older = {key: value for key, value in info.items() if key != "prep"}
    assert preparation_settings(older).preset == info["config"]["data"]["preset"]
