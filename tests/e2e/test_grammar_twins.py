"""A search restricted to the grammar's sentences never reads worse than the same search
without it: each `<mode>_grammar` twin of the shipped grid_s1 against its free mode on the
GRID s1 test split (the synthetic demo's model gets the same check in test_demo.py)."""

import json
from pathlib import Path

import pytest

from data_prep.corpora.grid import grid_id_to_words, grid_split
from pipelines.artifacts.exports import released_models
from pipelines.inference.lipreading import LipReadingExport, VideoTranscriber
from pipelines.scoring import word_error_rate
from pipelines.signatures.transcriber import transcribe_batches

pytestmark = pytest.mark.skipif(
    "grid_s1" not in released_models(), reason="no grid_s1 release in models/releases"
)


RECORDING = Path(__file__).with_name("grid_s1_test_split_hypotheses.json")
# Searched live here: the CTC twins, whose constrained searches once lost to the free ones.
# The attention and joint twins (searches over the same automaton, a few times slower) are
# read from the recording, which test_release.py checks live against the release.
LIVE_MODES = ("ctc_greedy", "ctc_beam")


def grammar_twin_wers(export, modes, clips: list, references: list[str]) -> dict:
    """{mode: (free WER, grammar WER)} of `modes` of a lip-reading export, on uint8
    mouth-crop clips [T, h, w, C]."""
    figures = {}
    for mode in modes:
        pair = []
        for grammar in (False, True):
            reader = VideoTranscriber(export, mode, grammar)
            hypotheses = transcribe_batches(reader, clips)
            pair.append(word_error_rate(references, hypotheses))
        figures[mode] = tuple(pair)
    return figures


def recorded_twin_wers(references: dict[str, str]) -> dict:
    """{mode: (free WER, grammar WER)} of every recorded mode with a twin, on the recording."""
    clips = json.loads(RECORDING.read_text())["clips"]
    ids = sorted(clips)
    truth = [references[i] for i in ids]
    modes = sorted({m for c in clips.values() for m in c if f"{m}_grammar" in c})
    return {
        mode: tuple(
            word_error_rate(truth, [clips[i][name]["text"] for i in ids])
            for name in (mode, f"{mode}_grammar")
        )
        for mode in modes
    }


@pytest.mark.needs_shared_data
def test_each_grammar_twin_of_the_release_reads_the_test_split_no_worse(shared_data):
    videos = sorted((shared_data / "grid" / "s1" / "video").glob("*.mp4"))
    test_split = [v for v in videos if grid_split(v.stem) == "test"]
    export = LipReadingExport("grid_s1")
    clips = [export.prepare(video).crops for video in test_split]
    references = {video.stem: " ".join(grid_id_to_words(video.stem)) for video in test_split}
    live = grammar_twin_wers(export, LIVE_MODES, clips, list(references.values()))
    recorded = recorded_twin_wers(references)
    assert set(recorded) == {"ctc_greedy", "ctc_beam", "attention", "joint"}
    for mode, pair in live.items():
        assert recorded[mode] == pytest.approx(pair), f"{mode}: the recording is not the release's"
    figures = {**recorded, **live}
    worse = {mode: pair for mode, pair in figures.items() if pair[1] > pair[0]}
    assert worse == {}, f"grammar twins worse than their free modes (free, grammar): {worse}"
