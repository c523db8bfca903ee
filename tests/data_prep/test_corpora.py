"""Tests for the video-corpus readers in data_prep.corpora (GRID, LRS, manifests, TFDS)."""

import json
from collections import Counter
from pathlib import Path

import pytest

from data_prep.corpora.grid import (
    GRID_GRAMMAR,
    grid_id_to_words,
    grid_sentence_id,
    grid_split,
    iter_grid,
    read_grid_alignment,
)
from data_prep.corpora.lrs import iter_lrs, parse_lrs_transcript
from data_prep.corpora.manifest import iter_manifest
from data_prep.corpora.transcripts import (
    CHARSET,
    GRID_CHARSET,
    ClipSpec,
    make_clip_spec,
    normalize_transcript,
)

BBAF2N = [
    (0, 23750, "sil"),
    (23750, 29500, "bin"),
    (29500, 34000, "blue"),
    (34000, 35500, "at"),
    (35500, 41000, "f"),
    (41000, 47250, "two"),
    (47250, 53000, "now"),
    (53000, 74500, "sil"),
]


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def align_text(segments) -> str:
    return "".join(f"{s} {e} {w}\n" for s, e, w in segments)


def sentence_segments(words, start=10000, step=5000):
    segments = [(0, start, "sil")]
    for i, word in enumerate(words):
        segments.append((start + i * step, start + (i + 1) * step, word))
    end = start + len(words) * step
    return segments + [(end, end + 10000, "sil")]


def by_id(clips):
    return {clip.id: clip for clip in clips}


# --- transcripts -----------------------------------------------------------------------------


def test_normalize_transcript():
    assert normalize_transcript("  Bin   BLUE\tat\nF  ") == ("bin blue at f", set())
    assert normalize_transcript("ＢＩＮ ﬁve") == ("bin five", set())
    assert normalize_transcript("Don't stop 2 me!") == ("don't stop 2 me", {"!"})
    assert normalize_transcript("café, olé") == ("caf ol", {"é", ","})
    assert normalize_transcript("a - b") == ("a b", {"-"})
    assert normalize_transcript("it's 4", GRID_CHARSET) == ("its", {"'", "4"})
    assert set("abcxyz09' ") <= CHARSET and "-" not in CHARSET


def test_make_clip_spec_records_problems(tmp_path):
    video = touch(tmp_path / "a.mp4")
    ok = make_clip_spec("a", video, "Hello")
    assert ok.ok and ok.transcript == "hello" and ok.raw_transcript == "Hello"
    odd = make_clip_spec("b", tmp_path / "b.mp4", "Hi!?")
    assert odd.problems == ["missing_video", "out_of_set_characters:!?"]
    assert not odd.ok
    empty = make_clip_spec("c", video, " ")
    assert empty.problems == ["empty_transcript"]
    assert isinstance(empty, ClipSpec)


# --- GRID ------------------------------------------------------------------------------------


def test_grid_grammar_and_ids():
    assert [len(slot) for slot in GRID_GRAMMAR.values()] == [4, 4, 4, 25, 10, 4]
    assert "w" not in GRID_GRAMMAR["letter"]
    assert grid_sentence_id("bin blue at f two now".split()) == "bbaf2n"
    assert grid_sentence_id("set white with o zero again".split()) == "swwoza"
    assert grid_id_to_words("bbaf2n") == "bin blue at f two now".split()
    assert grid_id_to_words("swwoza") == "set white with o zero again".split()
    with pytest.raises(ValueError, match="GRID"):
        grid_id_to_words("xbaf2n")
    with pytest.raises(ValueError, match="GRID"):
        grid_sentence_id("bin blue at w two now".split())


def test_grid_split_rule():
    # Ids at the buckets' edges (crc32 of the id, mod 100): 0 and 79 train, 80 and 89
    # validation, 90 and 99 test. A changed hash, edge or order moves some of them.
    edges = {
        "bbag7p": "train",  # bucket 0
        "bbah9p": "train",  # 79
        "bbab8p": "validation",  # 80
        "bbac2p": "validation",  # 89
        "bbaa1s": "test",  # 90
        "bbab5a": "test",  # 99
    }
    assert {clip_id: grid_split(clip_id) for clip_id in edges} == edges
    counts = Counter(grid_split(f"id{i}") for i in range(5000))
    assert set(counts) == {"train", "validation", "test"}
    assert 0.77 < counts["train"] / 5000 < 0.83
    assert 0.08 < counts["validation"] / 5000 < 0.12


def test_read_grid_alignment(tmp_path):
    path = write(tmp_path / "x.align", align_text(BBAF2N) + "garbage line here now\n\n")
    segments, problems = read_grid_alignment(path)
    assert segments[0] == (0, 24, "sil")
    assert segments[1] == (24, 30, "bin")
    assert segments[-1] == (53, 75, "sil")
    assert problems == ["bad_alignment_line:9"]


@pytest.fixture
def shared_layout(tmp_path):
    root = tmp_path / "grid"
    touch(root / "s1" / "video" / "bbaf2n.mp4")
    write(root / "s1" / "align" / "bbaf2n.align", align_text(BBAF2N))
    touch(root / "s1" / "video" / "lgaz5p.mp4")  # no alignment
    touch(root / "s1" / "video" / "pria6s.mp4")
    write(root / "s1" / "align" / "pria6s.align", "0 75000 sil\n")  # only silence
    touch(root / "s1" / "video" / "swwv9a.mp4")
    write(root / "s1" / "align" / "swwv9a.align", "")  # empty file
    write(  # no video
        root / "s1" / "align" / "sbbu1n.align",
        align_text(sentence_segments("set blue by u one now".split())),
    )
    touch(root / "s1" / "video" / "lrae3s.mp4")
    write(
        root / "s1" / "align" / "lrae3s.align",
        align_text(sentence_segments("lay red at E thr#ee soon".split())),
    )
    touch(root / "s2" / "video" / "bbaf2n.mp4")
    write(root / "s2" / "align" / "bbaf2n.align", align_text(BBAF2N))
    touch(root / "original_mpg" / "bbaf2n.mpg")
    return root


def test_iter_grid_shared_layout(shared_layout):
    clips = list(iter_grid(shared_layout))
    assert [(c.speaker, c.id) for c in clips] == [
        ("s1", "bbaf2n"),
        ("s1", "lgaz5p"),
        ("s1", "lrae3s"),
        ("s1", "pria6s"),
        ("s1", "sbbu1n"),
        ("s1", "swwv9a"),
        ("s2", "bbaf2n"),
    ]
    clips = by_id(c for c in clips if c.speaker == "s1")
    good = clips["bbaf2n"]
    assert good.ok
    assert good.transcript == "bin blue at f two now"
    assert good.video_path == shared_layout / "s1" / "video" / "bbaf2n.mp4"
    assert good.words == [
        (24, 30, "bin"),
        (30, 34, "blue"),
        (34, 36, "at"),
        (36, 41, "f"),
        (41, 47, "two"),
        (47, 53, "now"),
    ]
    assert clips["lgaz5p"].problems == ["missing_alignment"]
    assert clips["lgaz5p"].words is None and clips["lgaz5p"].transcript == ""
    assert clips["pria6s"].problems == ["empty_alignment"]
    assert clips["swwv9a"].problems == ["empty_alignment"]
    assert clips["sbbu1n"].problems == ["missing_video"]
    assert clips["sbbu1n"].transcript == "set blue by u one now"
    assert clips["sbbu1n"].video_path == shared_layout / "s1" / "video" / "sbbu1n.mp4"
    odd = clips["lrae3s"]
    assert odd.problems == ["out_of_set_characters:#"]
    assert odd.transcript == "lay red at e three soon"
    assert odd.raw_transcript == "lay red at E thr#ee soon"
    assert [w for _, _, w in odd.words] == odd.transcript.split()


def test_iter_grid_speakers(shared_layout):
    assert {c.speaker for c in iter_grid(shared_layout, speakers=["s2"])} == {"s2"}
    assert {c.speaker for c in iter_grid(shared_layout, speakers=[1])} == {"s1"}
    with pytest.raises(ValueError, match="s7"):
        list(iter_grid(shared_layout, speakers=["s7"]))


def test_iter_grid_root_is_a_speaker_dir(shared_layout):
    clips = list(iter_grid(shared_layout / "s2"))
    assert [(c.speaker, c.id, c.ok) for c in clips] == [("s2", "bbaf2n", True)]


def test_iter_grid_corpus_layouts(tmp_path):
    root = tmp_path / "corpus"
    touch(root / "s2" / "bbaf2n.mpg")
    write(root / "alignments" / "s2" / "bbaf2n.align", align_text(BBAF2N))
    touch(root / "s3" / "video" / "mpg_6000" / "bbaf2n.mpg")
    write(root / "align" / "bbaf2n.align", align_text(BBAF2N))
    touch(root / "s3" / "video" / "mpg_6000" / "lgaz5p.mpg")
    clips = list(iter_grid(root))
    assert [(c.speaker, c.id) for c in clips] == [
        ("s2", "bbaf2n"),
        ("s3", "bbaf2n"),
        ("s3", "lgaz5p"),
    ]
    assert clips[0].ok and clips[0].video_path == root / "s2" / "bbaf2n.mpg"
    assert clips[1].ok and clips[1].transcript == "bin blue at f two now"
    assert clips[2].problems == ["missing_alignment"]


def test_iter_grid_single_speaker_root_align(tmp_path):
    root = tmp_path / "corpus"
    touch(root / "s1" / "bbaf2n.mpg")
    write(root / "align" / "bbaf2n.align", align_text(BBAF2N))
    write(root / "align" / "lgaz5p.align", align_text(BBAF2N))
    clips = by_id(iter_grid(root))
    assert clips["bbaf2n"].ok
    assert clips["lgaz5p"].problems == ["missing_video"]
    assert clips["lgaz5p"].video_path == root / "s1" / "lgaz5p.mpg"


def test_iter_grid_bad_roots(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(iter_grid(tmp_path / "nope"))
    with pytest.raises(NotADirectoryError):
        list(iter_grid(touch(tmp_path / "file")))
    touch(tmp_path / "empty" / "readme.txt")
    with pytest.raises(ValueError, match="not a GRID corpus"):
        list(iter_grid(tmp_path / "empty"))


@pytest.mark.needs_shared_data
def test_shared_grid_s1(shared_data):
    clips = list(iter_grid(shared_data / "grid", speakers=["s1"]))
    assert len(clips) == 900
    assert all(c.ok for c in clips), [c for c in clips if not c.ok][:3]
    assert len({c.id for c in clips}) == 900
    for clip in clips:
        words = clip.transcript.split()
        assert len(words) == 6
        assert words == grid_id_to_words(clip.id)
        assert grid_sentence_id(words) == clip.id
        assert [w for _, _, w in clip.words] == words
        assert all(start <= end for start, end, _ in clip.words)
        assert clip.video_path.suffix == ".mp4" and clip.video_path.is_file()
    counts = Counter(grid_split(c.id) for c in clips)
    assert sum(counts.values()) == 900
    assert counts == {"train": 733, "validation": 88, "test": 79}


# --- LRS -------------------------------------------------------------------------------------

PRETRAIN_TXT = """Text:  WHEN YOU'RE DONE
Conf:  3

WORD START END ASDSCORE
WHEN 0.10 0.30 2.1
YOU'RE 0.30 0.62 3.3
broken line
DONE 0.62 1.00 4.0
"""


def test_parse_lrs_transcript():
    raw, words, problems = parse_lrs_transcript(PRETRAIN_TXT)
    assert raw == "WHEN YOU'RE DONE"
    assert words == [(2, 8, "WHEN"), (8, 16, "YOU'RE"), (16, 25, "DONE")]
    assert problems == ["bad_word_line:7"]
    assert parse_lrs_transcript("Text:  HI THERE\nConf:  4\n") == ("HI THERE", None, [])
    assert parse_lrs_transcript("Conf: 4\n") == (None, None, ["missing_text_line"])


def test_iter_lrs(tmp_path):
    root = tmp_path / "lrs"
    touch(root / "main" / "6330311066473698535" / "00011.mp4")
    write(root / "main" / "6330311066473698535" / "00011.txt", "Text:  HELLO  WORLD\nConf:  4\n")
    touch(root / "pretrain" / "abc" / "00001.mp4")
    write(root / "pretrain" / "abc" / "00001.txt", PRETRAIN_TXT)
    touch(root / "main" / "x" / "00002.mp4")  # no transcript
    write(root / "main" / "x" / "00003.txt", "Text:  NO VIDEO\n")
    touch(root / "main" / "x" / "00004.mp4")
    write(root / "main" / "x" / "00004.txt", "Conf: 4\n")  # no Text: line
    touch(root / "main" / "x" / "00005.mp4")
    write(root / "main" / "x" / "00005.txt", "Text:  50% OFF\n")
    write(root / "train.txt", "main/6330311066473698535/00011\n")  # a split list, not a clip
    clips = by_id(iter_lrs(root))
    assert sorted(clips) == [
        "main/6330311066473698535/00011",
        "main/x/00002",
        "main/x/00003",
        "main/x/00004",
        "main/x/00005",
        "pretrain/abc/00001",
    ]
    main = clips["main/6330311066473698535/00011"]
    assert main.ok and main.transcript == "hello world" and main.raw_transcript == "HELLO  WORLD"
    assert main.speaker == "6330311066473698535" and main.words is None
    assert main.video_path == root / "main" / "6330311066473698535" / "00011.mp4"
    pretrain = clips["pretrain/abc/00001"]
    assert pretrain.transcript == "when you're done"
    assert pretrain.words == [(2, 8, "when"), (8, 16, "you're"), (16, 25, "done")]
    assert pretrain.problems == ["bad_word_line:7"]
    assert clips["main/x/00002"].problems == ["missing_transcript"]
    assert clips["main/x/00003"].problems == ["missing_video"]
    assert clips["main/x/00003"].transcript == "no video"
    assert clips["main/x/00004"].problems == ["missing_text_line"]
    assert clips["main/x/00005"].problems == ["out_of_set_characters:%"]
    assert clips["main/x/00005"].transcript == "50 off"


def test_iter_lrs_bad_roots(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(iter_lrs(tmp_path / "nope"))
    write(tmp_path / "empty" / "notes.txt", "nothing here\n")
    with pytest.raises(ValueError, match="not an LRS corpus"):
        list(iter_lrs(tmp_path / "empty"))


# --- manifests -------------------------------------------------------------------------------


def test_iter_manifest_csv(tmp_path):
    touch(tmp_path / "clips" / "a.mp4")
    absolute = touch(tmp_path / "elsewhere" / "b.avi")
    write(
        tmp_path / "m.csv",
        "video,transcript,speaker\n"
        "clips/a.mp4,Hello World,spk1\n"
        f'{absolute},"Commas, quoted",\n'
        "clips/missing.mp4,gone,\n"
        "clips/a.mp4,again,spk1\n"
        "clips/a.mp4\n"
        ",no video,\n",
    )
    clips = list(iter_manifest(tmp_path / "m.csv"))
    assert len(clips) == 6
    a = clips[0]
    assert (a.id, a.transcript, a.speaker, a.ok) == ("a", "hello world", "spk1", True)
    assert a.video_path == tmp_path / "clips" / "a.mp4"
    assert clips[1].video_path == absolute and clips[1].speaker is None
    assert clips[1].problems == ["out_of_set_characters:,"]
    assert clips[2].problems == ["missing_video"]
    assert clips[3].problems == ["duplicate_id"]
    assert clips[4].problems == ["bad_manifest_row:6"]
    assert clips[5].problems == ["bad_manifest_row:7"]


def test_iter_manifest_csv_with_ids_and_tsv(tmp_path):
    touch(tmp_path / "a.mp4")
    write(tmp_path / "m.tsv", "id\tvideo\ttranscript\nclip-1\ta.mp4\tset red\n")
    clips = list(iter_manifest(tmp_path / "m.tsv"))
    assert [(c.id, c.transcript, c.ok) for c in clips] == [("clip-1", "set red", True)]


def test_iter_manifest_csv_missing_columns(tmp_path):
    write(tmp_path / "m.csv", "path,text\na.mp4,hi\n")
    with pytest.raises(ValueError, match="video"):
        list(iter_manifest(tmp_path / "m.csv"))


def test_iter_manifest_jsonl(tmp_path):
    touch(tmp_path / "v" / "a.mp4")
    lines = [
        json.dumps({"id": "first", "video": "v/a.mp4", "transcript": "Bin blue", "speaker": 3}),
        "",
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"video": "v/a.mp4"}),
        json.dumps({"video": "v/b.mp4", "transcript": "x"}),
    ]
    write(tmp_path / "m.jsonl", "\n".join(lines) + "\n")
    clips = list(iter_manifest(tmp_path / "m.jsonl"))
    assert [c.problems for c in clips] == [
        [],
        ["bad_manifest_row:3"],
        ["bad_manifest_row:4"],
        ["bad_manifest_row:5"],
        ["missing_video"],
    ]
    assert (clips[0].id, clips[0].transcript, clips[0].speaker) == ("first", "bin blue", "3")
    assert clips[4].id == "b"


def test_iter_manifest_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(iter_manifest(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="unknown format"):
        list(iter_manifest(write(tmp_path / "m.xml", "<x/>")))


# --- TFDS ------------------------------------------------------------------------------------


def test_tfds_builder_from_local_grid(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from data_prep.corpora.tfds_grid import GridLipreadingConfig
    from data_prep.synthetic.faces import write_synthetic_corpus

    raw = tmp_path / "raw"
    summary = write_synthetic_corpus(raw, num_clips=8, seed=3, size=(64, 64))
    touch(raw / "s1" / "video" / "lgaz5p.mp4")  # no alignment: skipped
    expected = {c["id"]: c["transcript"] for c in summary["clips"]}
    splits = Counter(grid_split(clip_id) for clip_id in expected)

    builder = tfds.builder(
        "grid_lipreading",
        data_dir=str(tmp_path / "tfds"),
        config=GridLipreadingConfig(name="tiny", root=str(raw), include_video=True),
    )
    builder.download_and_prepare()
    assert {name: info.num_examples for name, info in builder.info.splits.items()} == dict(splits)
    seen = {}
    for split in splits:
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            clip_id = example["id"].decode()
            assert grid_split(clip_id) == split
            seen[clip_id] = example["transcript"].decode()
            assert example["speaker"] == b"s1"
            video = Path(example["video_path"].decode())
            assert example["video"] == video.read_bytes()
            words = [w.decode() for w in example["words"]["word"]]
            assert " ".join(words) == seen[clip_id]
            assert (example["words"]["start"] <= example["words"]["end"]).all()
    assert seen == expected

    manual = tfds.builder("grid_lipreading", data_dir=str(tmp_path / "tfds2"))
    manual.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(raw)))
    train = list(tfds.as_numpy(manual.as_dataset(split="train")))
    assert len(train) == splits["train"] and "video" not in train[0]
