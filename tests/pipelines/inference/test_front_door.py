"""The export's front door on the shipped release: its catalogue, built from the names of an
export made before catalogues existed, the modes it offers, the errors that name what it
has instead, and the clips too short for any sentence it could read."""

import pytest

import pipelines.inference.lipreading as front_door
from data_prep.errors import ConfigError
from data_prep.lipreading import ClipSkipped
from models.frontends import LipNetFrontEnd
from pipelines.artifacts.exports import read_catalogue, read_export_info, released_models
from pipelines.inference.lipreading import (
    LipReadingExport,
    encoder_frames_per_step,
    preparation_settings,
    shortest_clip,
)
from tests.videos import first_frames

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


@pytest.fixture(scope="module")
def cut(tmp_path_factory):
    """cut(frames): the first `frames` frames of a synthetic talking face, as an mp4."""
    from data_prep.synthetic.faces import write_synthetic_corpus

    root = tmp_path_factory.mktemp("faces")
    face = write_synthetic_corpus(root / "faces", 1, seed=5)["clips"][0]["video"]

    return lambda frames: first_frames(face, root / f"first{frames}.mp4", frames)


def test_the_shortest_clip_of_an_older_export_is_worked_out_from_its_grammar(export):
    info = read_export_info("grid_s1")
    assert "shortest_clip" not in info  # made before the field: worked out at load
    # GRID's shortest sentence, e.g. "bin red at a one now", is 20 characters, none repeated.
    assert export.shortest == {"frames": 20, "labels": 20, "frames_per_step": 1}
    assert export.shortest_frames == 20
    assert shortest_clip(info, frames_per_step=2)["frames"] == 40
    # Without a grammar the shortest output is one character; the prepared clips' min_frames
    # (5) is the floor still.
    config = dict(info["config"], decode=dict(info["config"]["decode"], grammar=""))
    assert shortest_clip({**info, "config": config}) == {
        "frames": 5,
        "labels": 1,
        "frames_per_step": 1,
    }


def test_a_stored_shortest_clip_is_the_one_used(export, monkeypatch):
    info = {**export.info, "shortest_clip": {"frames": 30, "labels": 15, "frames_per_step": 2}}
    monkeypatch.setattr(front_door, "load_export", lambda _: (export.loaded, info))
    assert LipReadingExport("grid_s1").shortest_frames == 30


def test_frames_per_step_is_measured_on_the_front_end():
    lipnet = LipNetFrontEnd((40, 80, 1), (4, 4, 4))

    class Model:
        frontend = lipnet

    class Halving:
        batch_input_shape = (None, None, 40, 80, 1)

        def __call__(self, frames, lengths):
            return frames[:, ::2], (lengths + 1) // 2

    class Ensemble:
        members = [type("Member", (), {"frontend": Halving()})()]

    assert encoder_frames_per_step(Model()) == 1  # LipNet keeps one step a frame
    assert encoder_frames_per_step(Ensemble()) == 2


@pytest.mark.parametrize("frames", [1, 5, 19])
def test_a_clip_too_short_for_any_sentence_is_refused_naming_the_minimum(export, cut, frames):
    video = cut(frames)
    with pytest.raises(ClipSkipped) as refused:
        export.prepare(video)
    assert refused.value.reason == "too_short"
    seconds = f"{frames / 25:.2f} s"
    assert str(refused.value).startswith(f"{video}: too_short: {frames} frame")
    assert str(refused.value).endswith(f"({seconds}), this model needs at least 20 (0.80 s)")


def test_a_clip_at_the_minimum_is_read(export, cut):
    prepared = export.prepare(cut(20))
    assert len(prepared.crops) == 20
    out = export.run(export.function(export.entry("ctc_greedy", grammar=True)), prepared)
    assert len(out["text"].decode().split()) == 6  # a whole GRID sentence


def test_batch_transcription_skips_a_too_short_clip_and_reads_the_next(export, cut, tmp_path):
    import json

    from pipelines.serving.batch import transcribe_many

    output = tmp_path / "out.jsonl"
    videos = [str(cut(5)), str(cut(20))]
    summary = transcribe_many(videos, export, output, mode="ctc_greedy", grammar=True)
    assert (summary["transcribed"], summary["skipped"]) == (1, 1)
    short, whole = map(json.loads, output.read_text().splitlines())
    assert short["skipped"] == "too_short"
    assert short["detail"] == "5 frames (0.20 s), this model needs at least 20 (0.80 s)"
    assert whole["num_frames"] == 20 and len(whole["text"].split()) == 6
