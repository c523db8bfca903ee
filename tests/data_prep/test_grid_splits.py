"""GRID's split rules on a many-speaker corpus: "sentence" (today's id hash), LipNet's "unseen"
and "overlapped", chosen by the one override --config.data.split."""

import json
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from configs.grid_lipnet import get_config
from data_prep.corpora.grid import (
    GRID_GRAMMAR,
    GRID_SPLITS,
    UNSEEN_SPEAKERS,
    grid_id_to_words,
    grid_sentence_id,
    grid_split,
    grid_split_of,
    iter_grid,
    sentence_of,
)
from data_prep.corpora.transcripts import ClipSpec
from data_prep.errors import ConfigError
from data_prep.lipreading import (
    LipreadingSettings,
    corpus_clips,
    prepare_lipreading,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SPEAKERS = ("s1", "s2", "s3", "s7", "s20", "s22", "s25", "s34")


def random_sentences(rng: random.Random, count: int) -> list[list[str]]:
    return [[rng.choice(choices) for choices in GRID_GRAMMAR.values()] for _ in range(count)]


def write_corpus(root: Path, per_speaker: int, pool: int, seed: int = 0) -> Path:
    """The corpus' own layout: `s<N>/<id>.mpg` (a few bytes: the reader only checks the file is
    there) with `alignments/s<N>/<id>.align`, or `s<N>/align/` for one speaker. Sentences come
    from a shared pool, so speakers say some of the same ones, as in GRID."""
    rng = random.Random(seed)
    pool_ids = {grid_sentence_id(words): words for words in random_sentences(rng, pool)}
    ids = sorted(pool_ids)
    for speaker in SPEAKERS:
        align_dir = root / speaker / "align" if speaker == "s7" else root / "alignments" / speaker
        align_dir.mkdir(parents=True, exist_ok=True)
        (root / speaker).mkdir(exist_ok=True)
        for clip_id in rng.sample(ids, per_speaker):
            (root / speaker / f"{clip_id}.mpg").write_bytes(b"\x00")
            lines = ["0 10000 sil"]
            for i, word in enumerate(pool_ids[clip_id]):
                lines.append(f"{10000 + i * 5000} {15000 + i * 5000} {word}")
            (align_dir / f"{clip_id}.align").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = write_corpus(tmp_path_factory.mktemp("grid") / "GRID", per_speaker=400, pool=1500)
    return root, corpus_clips("grid", root)


def splits_by(rule, clips):
    split_of = grid_split_of(rule)
    return {clip.id: split_of(clip) for clip in clips}


def test_a_many_speaker_read_names_clips_by_speaker(corpus):
    root, clips = corpus
    assert len(clips) == len(SPEAKERS) * 400 and all(clip.ok for clip in clips)
    assert len({clip.id for clip in clips}) == len(clips)  # unique although sentences repeat
    assert Counter(sentence_of(clip) for clip in clips).most_common(1)[0][1] > 1
    for clip in clips:
        assert clip.id == f"{clip.speaker}/{sentence_of(clip)}"
        assert clip.transcript.split() == grid_id_to_words(sentence_of(clip))
        assert clip.video_path == root / clip.speaker / f"{sentence_of(clip)}.mpg"
    assert {clip.speaker for clip in clips} == set(SPEAKERS)
    # One speaker alone keeps today's bare ids.
    alone = corpus_clips("grid", root / "s3")
    assert len(alone) == 400 and all("/" not in clip.id for clip in alone)


def test_unseen_holds_out_lipnets_four_speakers_and_no_other(corpus):
    _, clips = corpus
    splits = splits_by("unseen", clips)
    held = defaultdict(set)
    for clip in clips:
        split = splits[clip.id]
        if clip.speaker in UNSEEN_SPEAKERS:
            assert split in ("validation", "test"), clip.id
            held[split].add(clip.speaker)
        else:
            assert split == "train", clip.id
    # Validation and test both hold all four (LipNet evaluates on the four together).
    assert held == {"validation": set(UNSEEN_SPEAKERS), "test": set(UNSEEN_SPEAKERS)}
    counts = Counter(splits.values())
    assert 0.4 < counts["validation"] / (counts["validation"] + counts["test"]) < 0.6


def test_overlapped_holds_out_about_255_in_1000_of_each_speaker(corpus):
    _, clips = corpus
    splits = splits_by("overlapped", clips)
    per_speaker = defaultdict(Counter)
    for clip in clips:
        per_speaker[clip.speaker][splits[clip.id]] += 1
    for speaker, counts in per_speaker.items():
        held = counts["validation"] + counts["test"]
        # 400 clips each: 102 expected, 3 standard deviations either way.
        assert 76 <= held <= 128, (speaker, counts)
        assert counts["validation"] and counts["test"], (speaker, counts)
    # A sentence sits in one split, whoever says it.
    split_of_sentence = defaultdict(set)
    for clip in clips:
        split_of_sentence[sentence_of(clip)].add(splits[clip.id])
    assert all(len(found) == 1 for found in split_of_sentence.values())
    # Every speaker trains and is evaluated: the speakers overlap.
    assert all(counts["train"] for counts in per_speaker.values())


def test_sentence_keeps_todays_assignment(corpus):
    root, clips = corpus
    splits = splits_by("sentence", clips)
    assert all(splits[clip.id] == grid_split(sentence_of(clip)) for clip in clips)
    # A single speaker's bare ids: exactly today's grid_split(spec.id), the default.
    alone = corpus_clips("grid", root / "s3")
    assert LipreadingSettings().split == "sentence"
    split_of = grid_split_of(LipreadingSettings().split)
    assert [split_of(c) for c in alone] == [grid_split(c.id) for c in alone]
    # Ids of other corpora (LRS paths, no speaker) are hashed whole, as before.
    lrs_like = ClipSpec("main/demo/0001", Path("x"), "a", "a")
    assert split_of(lrs_like) == grid_split("main/demo/0001")


def test_speaker_rules_are_stable_across_subsets(corpus):
    _, clips = corpus
    subset = clips[::7]
    for rule in GRID_SPLITS:
        whole = splits_by(rule, clips)
        assert all(whole[clip_id] == split for clip_id, split in splits_by(rule, subset).items())


def test_unknown_rules_and_missing_speakers_are_refused():
    with pytest.raises(ConfigError, match="unseen"):
        grid_split_of("speakers")
    with pytest.raises(ConfigError, match="unknown split"):
        LipreadingSettings(split="random")
    nobody = ClipSpec("bbaf2n", Path("x"), "a", "a")
    with pytest.raises(ConfigError, match="speaker"):
        grid_split_of("unseen")(nobody)


def test_training_refuses_data_prepared_with_another_split():
    prepared = LipreadingSettings().to_dict()
    assert LipreadingSettings(split="unseen").differences(prepared) == [
        "split='unseen' (prepared with 'sentence')"
    ]
    older = {k: v for k, v in prepared.items() if k != "split"}  # a manifest before the key
    assert LipreadingSettings().differences(older) == []


def test_the_split_is_one_override(tmp_path):
    root = write_corpus(tmp_path / "GRID", per_speaker=4, pool=40, seed=1)
    prepared = tmp_path / "prepared"
    command = [
        sys.executable,
        "-m",
        "pipelines",
        "prepare",
        "--config=configs/grid_lipnet.py",
        "--config.data.split=unseen",
        f"--config.data.input_dir={root}",
        f"--config.data.prepared_dir={prepared}",
        "--config.data.workers=1",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert get_config().data.split == "sentence"  # the shipped recipe is unchanged
    assert manifest["settings"]["split"] == "unseen"
    placed = {
        item["id"]: split
        for split, entry in manifest["splits"].items()
        for item in entry["skipped"]  # a few bytes are no video: every clip is skipped
    }
    assert len(placed) == len(SPEAKERS) * 4
    for clip_id, split in placed.items():
        speaker = clip_id.split("/")[0]
        assert (split != "train") == (speaker in UNSEEN_SPEAKERS), (clip_id, split)


def test_prepare_without_split_of_follows_the_settings(tmp_path):
    root = write_corpus(tmp_path / "GRID", per_speaker=3, pool=30, seed=2)
    clips = corpus_clips("grid", root)
    manifest = prepare_lipreading(
        clips, tmp_path / "prepared", LipreadingSettings(split="overlapped")
    )
    expected = Counter(grid_split_of("overlapped")(clip) for clip in clips)
    assert {s: len(e["skipped"]) for s, e in manifest["splits"].items()} == dict(expected)


@pytest.mark.needs_shared_data
def test_shared_speakers_read_as_several(shared_data, tmp_path):
    more = shared_data / "grid_more_speakers"
    clips = corpus_clips("grid", more)
    assert Counter(clip.speaker for clip in clips) == {"s5": 10, "s26": 10, "s31": 10}
    assert all(clip.ok for clip in clips)
    assert all(clip.id == f"{clip.speaker}/{sentence_of(clip)}" for clip in clips)
    assert [c.speaker for c in iter_grid(more)] == ["s5"] * 10 + ["s26"] * 10 + ["s31"] * 10
    # A corpus root holding s1 beside them, as the whole corpus would.
    root = tmp_path / "GRID"
    root.mkdir()
    (root / "s1").symlink_to(shared_data / "grid" / "s1")
    for speaker in ("s5", "s26", "s31"):
        (root / speaker).symlink_to(more / speaker)
    clips = corpus_clips("grid", root)
    assert Counter(clip.speaker for clip in clips) == {"s1": 900, "s5": 10, "s26": 10, "s31": 10}
    unseen = grid_split_of("unseen")
    assert {unseen(c) for c in clips if c.speaker == "s1"} == {"validation", "test"}
    assert {unseen(c) for c in clips if c.speaker != "s1"} == {"train"}
    sentence = grid_split_of("sentence")
    s1 = [c for c in clips if c.speaker == "s1"]
    assert Counter(sentence(c) for c in s1) == {"train": 733, "validation": 88, "test": 79}
