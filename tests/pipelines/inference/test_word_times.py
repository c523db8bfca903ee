"""Word times in every decoding mode: the CTC searches return no alignment, so their words are
timed by the export's attention decoder forced over their text; on real GRID clips those times
fall on the .align file's."""

import numpy as np
import pytest

from pipelines.artifacts.exports import released_models
from pipelines.inference.words import subtitles, timed_words, word_times

pytestmark = pytest.mark.skipif(
    "grid_s1" not in released_models(), reason="no grid_s1 release in models/releases"
)


@pytest.fixture(scope="module")
def export():
    from pipelines.inference.lipreading import LipReadingExport

    return LipReadingExport("grid_s1")


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    """A GRID-like synthetic talking face."""
    from data_prep.synthetic.faces import write_synthetic_corpus

    root = tmp_path_factory.mktemp("faces")
    return write_synthetic_corpus(root, 1, seed=5)["clips"][0]["video"]


@pytest.fixture(scope="module")
def face(export, face_video):
    """The face prepared by the release's front door."""
    return export.prepare(face_video)


def read(export, prepared, mode, grammar=False):
    out = export.run(export.function(export.entry(mode, grammar)), prepared)
    text = out["text"].decode()
    return (
        text,
        out["alignments"],
        timed_words(export, text, out["alignments"], prepared.crops, 25.0),
    )


def test_every_mode_times_its_words_in_order_within_the_video(export, face):
    duration = len(face.crops) / face.fps
    for grammar in (False, True):
        for mode in export.grammar_modes() if grammar else export.modes():
            text, _, words = read(export, face, mode, grammar)
            assert text, (mode, grammar)
            assert [w["word"] for w in words] == text.split(), (mode, grammar)
            starts = [w["start"] for w in words]
            assert starts == sorted(starts), (mode, grammar, words)
            for word in words:
                assert 0.0 <= word["start"] < word["end"] <= duration + 1e-6, (mode, word)


def test_forcing_a_text_through_the_decoder_gives_the_search_s_own_word_times(export, face):
    text, alignment, searched = read(export, face, "attention", grammar=True)
    assert alignment.size, "attention modes return their alignment"
    forced = timed_words(export, text, np.zeros((0, len(face.crops)), np.float32), face.crops, 25.0)
    expected = word_times(text, alignment[:, : len(face.crops)], 25.0, len(face.crops))
    assert searched == expected
    # Forced over the same text and frames, the decoder attends where its search attended.
    for got, want in zip(forced, expected, strict=True):
        assert got["word"] == want["word"]
        assert abs(got["start"] - want["start"]) <= 0.041 and abs(got["end"] - want["end"]) <= 0.041


def test_a_ctc_transcript_gets_subtitles(export, face):
    _, _, words = read(export, face, "ctc_greedy")
    srt = subtitles(words, "srt")
    assert srt.startswith("1\n00:00:0") and words[-1]["word"] in srt


def test_batch_json_lines_carry_ctc_word_times_and_subtitles(export, face_video, tmp_path):
    import json
    from pathlib import Path

    from pipelines.serving.batch import transcribe_many

    output = tmp_path / "out.jsonl"
    transcribe_many([face_video], export, output, mode="ctc_greedy", subtitle_format="srt")
    (record,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert record["text"] and [w["word"] for w in record["words"]] == record["text"].split()
    srt = (tmp_path / f"{Path(face_video).stem}.srt").read_text()
    assert srt.startswith("1\n") and record["words"][-1]["word"] in srt


def align_file_words(path):
    """(word, start s, end s) of a GRID .align file, silences left out."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(w, int(a) / 25000, int(b) / 25000) for a, b, w in rows if w not in ("sil", "sp")]


@pytest.mark.needs_shared_data
def test_ctc_word_times_fall_on_the_grid_alignments(export, shared_data):
    grid = shared_data / "grid" / "s1"
    videos = sorted((grid / "video").glob("*.mp4"))[::75]
    starts, ends = [], []
    for video in videos:
        reference = align_file_words(grid / "align" / f"{video.stem}.align")
        prepared = export.prepare(video)
        text, alignment, words = read(export, prepared, "ctc_greedy")
        assert not alignment.size, "the release's CTC signatures return no alignment"
        if [w["word"] for w in words] != [r[0] for r in reference]:
            continue  # a misread word has no reference time
        starts += [abs(w["start"] - r[1]) for w, r in zip(words, reference, strict=True)]
        ends += [abs(w["end"] - r[2]) for w, r in zip(words, reference, strict=True)]
    assert len(starts) >= 6 * len(videos) // 2, "most clips should be read right"
    print(
        f"CTC word times vs .align: median start {np.median(starts):.3f} s, end "
        f"{np.median(ends):.3f} s over {len(starts)} words"
    )
    assert np.median(starts) <= 0.3 and np.median(ends) <= 0.3


def test_an_export_whose_model_cannot_be_rebuilt_answers_without_ctc_times(monkeypatch):
    import pipelines.inference.words as words
    from data_prep.errors import ConfigError

    class OddExport:
        name, info = "odd", {"task": "lipreading"}

    tries = []

    def refuse(export):
        tries.append(export)
        raise ConfigError("its weights do not fit this model")

    monkeypatch.setattr(words, "ForcedAligner", refuse)
    crops = np.zeros((8, 40, 80, 1), np.uint8)
    odd = OddExport()
    assert words.timed_words(odd, "bin blue", np.zeros((0, 8), np.float32), crops, 25.0) is None
    assert words.aligner_for(odd) is None
    assert len(tries) == 1  # refused once, not rebuilt for every request
