"""`make demo`'s video path: chance baseline and one tiny end-to-end run."""

import json

import pytest

from pipelines import demo


def test_chance_wer_guesses_the_most_frequent_word_of_each_slot():
    train = ["bin blue at a one now", "bin green at b one now", "lay blue by a two now"]
    test = ["bin blue at a one now", "lay green by f two soon"]
    # Guess "bin blue at a one now": every word right in the first, every word wrong in the second.
    assert demo.chance_wer(train, test) == pytest.approx(50.0)


# A reduced `make demo` video path that CI can afford: fewer clips and steps, the same gate
# logic, and a bar far below chance, so a change that stops lip reading from learning fails.
REDUCED_CLIPS, REDUCED_STEPS = 240, 300


def test_a_reduced_video_demo_learns_far_below_chance(tmp_path):
    report = demo.run_video_demo(tmp_path, train_steps=REDUCED_STEPS, num_clips=REDUCED_CLIPS)
    summary = report["summary"]
    assert set(summary["modes"]) == set(demo.VIDEO_MODES)
    assert summary["num_clips"] == summary["clips_by_split"]["test"] > 0
    assert 50 < summary["chance_wer"] <= 100
    assert (tmp_path / "video_attention.png").stat().st_size > 0
    assert summary["transcribed"]["reference"]
    saved = json.loads((tmp_path / "video_eval_test.json").read_text())
    assert saved["summary"]["chance_wer"] == summary["chance_wer"]
    gate = 0.5 * summary["chance_wer"]
    assert demo.print_video_report(report, tmp_path, max_wer=gate), summary["modes"]["joint"]
