"""The shipped GRID s1 model: it loads by name, reads a generated face video and answers a
GRID sentence; it loads in a fresh process without project code. (Not an accuracy test:
its figures are in models/releases/grid_s1/RESULTS.md.)"""

import json
from pathlib import Path

import pytest

from data_prep.corpora.grid import GRID_GRAMMAR
from pipelines.artifacts.exports import RELEASES_DIR, released_models
from tests.fresh_process import run_without_project

pytestmark = pytest.mark.skipif(
    "grid_s1" not in released_models(), reason="no grid_s1 release in models/releases"
)


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    from data_prep.synthetic.faces import write_synthetic_corpus

    root = tmp_path_factory.mktemp("face")
    return write_synthetic_corpus(root, 1, seed=5)["clips"][0]["video"]


def test_the_release_transcribes_a_video_by_name(face_video):
    from pipelines.inference.lipreading import transcribe_video

    result = transcribe_video(face_video, "grid_s1", mode="attention", grammar=True)
    words = result["text"].split()
    assert len(words) == len(GRID_GRAMMAR)
    assert all(word in slot for word, slot in zip(words, GRID_GRAMMAR.values(), strict=True))
    plain = transcribe_video(face_video, "grid_s1", mode="ctc_greedy")
    stored_shape = tuple(plain_info()["frame_shape"])
    assert isinstance(plain["text"], str) and plain["crops"].shape[1:] == stored_shape


def plain_info() -> dict:
    from pipelines.artifacts.exports import read_export_info

    return read_export_info("grid_s1", task="lipreading")


def test_the_release_loads_with_nothing_but_tensorflow(tmp_path):
    export = RELEASES_DIR / "grid_s1" / "export"
    height, width, channels = plain_info()["frame_shape"]
    script = f"""
        import json
        import numpy as np, tensorflow as tf
        model = tf.saved_model.load({str(export)!r})
        frames = np.zeros((1, 75, {height}, {width}, {channels}), np.uint8)
        out = model.signatures["serving_default"](frames=frames, lengths=np.array([75], np.int32))
        print(json.dumps({{"signatures": sorted(model.signatures), "text": str(out["text"][0])}}))
        """
    fresh = run_without_project(script, tmp_path, only=["tensorflow"])
    assert {"serving_default", "joint", "attention", "ctc_greedy", "ctc_beam"} <= set(
        fresh["signatures"]
    )


HYPOTHESES = Path(__file__).with_name("grid_s1_test_split_hypotheses.json")


@pytest.mark.needs_shared_data
def test_the_release_reads_its_test_split_as_it_did_before_the_renovation(shared_data):
    """Every raw test-split video of GRID s1 through the front door gives the text and score
    recorded with the code before the export front door and the shared clip core (commit
    b115e62): the serving default and greedy CTC on all 79 clips, every mode on 8 of them."""
    from data_prep.corpora.grid import grid_split
    from pipelines.inference.lipreading import LipReadingExport, VideoTranscriber

    recorded = json.loads(HYPOTHESES.read_text())["clips"]
    videos = sorted((shared_data / "grid" / "s1" / "video").glob("*.mp4"))
    test_split = [v for v in videos if grid_split(v.stem) == "test"]
    assert sorted(v.stem for v in test_split) == sorted(recorded)
    export = LipReadingExport("grid_s1")
    readers = {}
    for name in recorded[test_split[0].stem]:
        mode, grammar = name.removesuffix("_grammar"), name.endswith("_grammar")
        readers[name] = VideoTranscriber(export, mode, grammar)
    differences = []
    for index, video in enumerate(test_split):
        names = list(readers) if index < 8 else ["attention", "ctc_greedy"]
        prepared = export.prepare(video)
        for name in names:
            out = export.run(readers[name].signature, prepared)
            text, score = out["text"].decode(), float(out["scores"])
            expected = recorded[video.stem][name]
            if text != expected["text"] or abs(score - expected["score"]) > 0.01:
                differences.append(f"{video.stem} {name}: {text!r} {score:.3f} vs {expected}")
    assert differences == []
