"""A search restricted to the grammar's sentences never reads worse than the same search
without it: each `<mode>_grammar` twin of the shipped grid_s1 against its free mode on the
GRID s1 test split (the synthetic demo's model gets the same check in test_demo.py)."""

import pytest

from pipelines.artifacts.exports import released_models

pytestmark = pytest.mark.skipif(
    "grid_s1" not in released_models(), reason="no grid_s1 release in models/releases"
)


def grammar_twin_wers(export, clips: list, references: list[str]) -> dict:
    """{mode: (free WER, grammar WER)} of every mode of a lip-reading export that has a
    grammar twin, on uint8 mouth-crop clips [T, h, w, C]."""
    from pipelines.inference.lipreading import VideoTranscriber
    from pipelines.scoring import word_error_rate
    from pipelines.signatures.transcriber import transcribe_batches

    figures = {}
    for mode in export.grammar_modes():
        pair = []
        for grammar in (False, True):
            reader = VideoTranscriber(export, mode, grammar)
            hypotheses = transcribe_batches(reader, clips)
            pair.append(word_error_rate(references, hypotheses))
        figures[mode] = tuple(pair)
    return figures


@pytest.mark.needs_shared_data
def test_each_grammar_twin_of_the_release_reads_the_test_split_no_worse(shared_data):
    from data_prep.corpora.grid import grid_id_to_words, grid_split
    from pipelines.inference.lipreading import LipReadingExport

    videos = sorted((shared_data / "grid" / "s1" / "video").glob("*.mp4"))
    test_split = [v for v in videos if grid_split(v.stem) == "test"]
    export = LipReadingExport("grid_s1")
    clips = [export.prepare(video).crops for video in test_split]
    references = [" ".join(grid_id_to_words(video.stem)) for video in test_split]
    figures = grammar_twin_wers(export, clips, references)
    assert set(figures) == {"ctc_greedy", "ctc_beam", "attention", "joint"}
    worse = {mode: pair for mode, pair in figures.items() if pair[1] > pair[0]}
    assert worse == {}, f"grammar twins worse than their free modes (free, grammar): {worse}"
