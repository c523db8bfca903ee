"""The shipped GRID s1 model: it loads by name and reads a generated face video; loaded in a
fresh process without project code, and through batch transcription, it gives the text and
score of the in-process transcriber on the same clip in every mode. (Not an accuracy test:
its figures are in models/releases/grid_s1/RESULTS.md.)"""

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.artifacts.exports import RELEASES_DIR, released_models
from tests.fresh_process import run_without_project

pytestmark = pytest.mark.skipif(
    "grid_s1" not in released_models(), reason="no grid_s1 release in models/releases"
)


def same_score(score: float, expected: float) -> bool:
    """Scores of one clip from two paths: float32 search; answers round to 4 decimals."""
    return score == pytest.approx(expected, rel=1e-3, abs=1e-4)


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    from data_prep.synthetic.faces import write_synthetic_corpus

    root = tmp_path_factory.mktemp("face")
    return write_synthetic_corpus(root, 1, seed=5)["clips"][0]["video"]


@pytest.fixture(scope="module")
def release():
    from pipelines.inference.lipreading import LipReadingExport

    return LipReadingExport("grid_s1")


@pytest.fixture(scope="module")
def in_process(release, face_video):
    """The in-process transcriber on the face clip, every signature: name -> its answer."""
    from pipelines.inference.lipreading import VideoTranscriber

    return {
        name: VideoTranscriber(release, entry.mode_name, entry.grammar).transcribe(face_video)
        for name, entry in release.catalogue.items()
    }


def test_the_release_transcribes_a_video_by_name(release, in_process):
    assert release.export_dir.resolve() == (RELEASES_DIR / "grid_s1" / "export").resolve()
    assert set(in_process) == {
        f"{mode}{suffix}"
        for mode in ("attention", "ctc_beam", "ctc_greedy", "joint")
        for suffix in ("", "_grammar")
    } | {"serving_default"}
    crops = in_process["serving_default"]["crops"]
    assert crops.shape[1:] == tuple(release.info["frame_shape"]) and len(crops) > 50
    # Every mode reads the one preparation of the clip.
    assert all(np.array_equal(result["crops"], crops) for result in in_process.values())


def test_the_release_loads_with_nothing_but_tensorflow_and_reads_as_in_process(
    in_process, tmp_path
):
    """The clip's crops through every signature of the release loaded by TensorFlow alone:
    the text and score of the in-process transcriber."""
    export = RELEASES_DIR / "grid_s1" / "export"
    np.save(tmp_path / "crops.npy", in_process["serving_default"]["crops"])
    script = f"""
        import json
        import numpy as np, tensorflow as tf
        model = tf.saved_model.load({str(export)!r})
        crops = np.load({str(tmp_path / "crops.npy")!r})
        inputs = {{"frames": crops[None], "lengths": np.array([len(crops)], np.int32)}}
        answers = {{}}
        for name, function in model.signatures.items():
            out = function(**inputs)
            answers[name] = [out["text"][0].numpy().decode(), float(out["scores"][0])]
        print(json.dumps(answers))
        """
    fresh = run_without_project(script, tmp_path, only=["tensorflow"])
    assert set(fresh) == set(in_process)
    differences = [
        f"{name}: fresh {fresh[name]} vs in-process {result['text']!r} {result['score']:.4f}"
        for name, result in sorted(in_process.items())
        if fresh[name][0] != result["text"] or not same_score(fresh[name][1], result["score"])
    ]
    assert differences == []


@pytest.mark.parametrize("mode, grammar", [("attention", True), ("ctc_greedy", False)])
def test_batch_transcription_reads_the_clip_as_in_process(
    release, in_process, face_video, tmp_path, mode, grammar
):
    from pipelines.inference.words import timed_words
    from pipelines.serving.batch import transcribe_many

    expected = in_process[mode + ("_grammar" if grammar else "")]
    output = tmp_path / "transcripts.jsonl"
    # The export already open: batch takes what VideoTranscriber takes, and a second load of
    # the release would cost the suite tens of seconds.
    transcribe_many([str(face_video)], release, output, mode=mode, grammar=grammar)
    (record,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert record["text"] == expected["text"]
    assert same_score(record["score"], expected["score"])
    assert record["num_frames"] == len(expected["crops"])
    crops, fps = expected["crops"], record["fps"]
    assert record["words"] == timed_words(
        release, expected["text"], expected["alignments"], crops, fps
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
