"""`make demo`'s video path: chance baseline and one tiny end-to-end run."""

import json

import pytest

from pipelines import demo


def test_chance_wer_guesses_the_most_frequent_word_of_each_slot():
    train = ["bin blue at a one now", "bin green at b one now", "lay blue by a two now"]
    test = ["bin blue at a one now", "lay green by f two soon"]
    # Guess "bin blue at a one now": every word right in the first, every word wrong in the second.
    assert demo.chance_wer(train, test) == pytest.approx(50.0)


@pytest.mark.slow
def test_video_demo_runs_every_stage(tmp_path):
    report = demo.run_video_demo(tmp_path, train_steps=4, num_clips=24)
    summary = report["summary"]
    assert set(summary["modes"]) == set(demo.VIDEO_MODES)
    assert summary["num_clips"] == summary["clips_by_split"]["test"] > 0
    assert 0 < summary["chance_wer"] <= 100
    assert (tmp_path / "video_attention.png").stat().st_size > 0
    assert summary["transcribed"]["reference"]
    saved = json.loads((tmp_path / "video_eval_test.json").read_text())
    assert saved["summary"]["chance_wer"] == summary["chance_wer"]
