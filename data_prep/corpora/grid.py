"""The GRID audiovisual sentence corpus: layouts, alignments, grammar, ids and the split rule.

Two layouts are read, per speaker directory `s<N>` under the root:
  - the corpus' own: videos `s<N>/<id>.mpg` (or anywhere below `s<N>/`), alignments in
    `s<N>/align/<id>.align`, `<root>/align/<id>.align` or `<root>/alignments/s<N>/<id>.align`;
  - the shared one: `s<N>/video/<id>.mp4` with `s<N>/align/<id>.align`.
The root may also be a speaker directory itself. Alignment lines are `start end word` with
times in 1/1000 of a frame at 25 fps; `sil` and `sp` are silence. Word frames are
`round(time / 1000)` (half up) with the end exclusive.

Speakers read the same sentences (bbaf2n is said by many of the 34), so a read of several
speakers names its clips `s<N>/<id>` (`speaker_clip_ids`). Three split rules (`GRID_SPLITS`,
`grid_split_of`): "sentence" (the id hash of `grid_split`, speaker-blind), and LipNet's
(Assael et al. 2016) "unseen" (speakers 1, 2, 20 and 22 held out) and "overlapped" (about 255
of each speaker's 1000 sentences held out).
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from data_prep.corpora.transcripts import CHARSET, ClipSpec, Word, make_clip_spec
from data_prep.errors import (
    ConfigError,
    CorpusLayoutError,
    CorpusNotADirectoryError,
    CorpusNotFoundError,
)

GRID_GRAMMAR: dict[str, tuple[str, ...]] = {
    "command": ("bin", "lay", "place", "set"),
    "colour": ("blue", "green", "red", "white"),
    "preposition": ("at", "by", "in", "with"),
    "letter": tuple("abcdefghijklmnopqrstuvxyz"),
    "digit": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "adverb": ("again", "now", "please", "soon"),
}
SILENCE_WORDS = frozenset({"sil", "sp"})
VIDEO_SUFFIXES = (".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".mkv", ".webm")
ALIGN_SUFFIX = ".align"
SPLIT_BUCKETS = 100
TRAIN_BUCKETS = 80
VALIDATION_BUCKETS = 90

# The split rules `grid_split_of` knows; "sentence" is the one every shipped recipe uses.
GRID_SPLITS = ("sentence", "unseen", "overlapped")
# LipNet's unseen-speaker evaluation set (its other speakers train).
UNSEEN_SPEAKERS = frozenset({"s1", "s2", "s20", "s22"})
# LipNet's overlapped split holds out 255 random sentences of each speaker's 1000.
OVERLAPPED_BUCKETS = 1000
OVERLAPPED_HELD_OUT = 255
OVERLAPPED_VALIDATION = 128  # of those 255 buckets, the first 128 validate, the rest test

_SPEAKER_RE = re.compile(r"^s(\d+)$")


def grid_split(clip_id: str) -> str:
    """The split of a clip: crc32(id) mod 100 below 80 is train, below 90 validation, else test.

    The rule depends on the sentence id only (not the speaker), so it is stable across
    machines, Python versions and corpus subsets; on the 900 shared s1 clips it gives 733
    train, 88 validation and 79 test.
    """
    bucket = _bucket(clip_id, SPLIT_BUCKETS)
    if bucket < TRAIN_BUCKETS:
        return "train"
    if bucket < VALIDATION_BUCKETS:
        return "validation"
    return "test"


def _bucket(key: str, buckets: int) -> int:
    """A stable hash bucket of a string (crc32: the same on every machine and Python)."""
    return zlib.crc32(key.encode("utf-8")) % buckets


def sentence_of(spec: ClipSpec) -> str:
    """A clip's id without the `<speaker>/` that `speaker_clip_ids` puts before it."""
    prefix = f"{spec.speaker}/"
    return spec.id[len(prefix) :] if spec.speaker and spec.id.startswith(prefix) else spec.id


def _unseen_split(spec: ClipSpec) -> str:
    """LipNet's unseen speakers: s1, s2, s20, s22 validate and test (half each by a hash of
    speaker and sentence, so both hold all four), every other speaker trains."""
    speaker = _speaker_name(spec.speaker)  # a manifest may say "1" for s1
    if speaker not in UNSEEN_SPEAKERS:
        return "train"
    bucket = _bucket(f"unseen:{speaker}/{sentence_of(spec)}", 2)
    return "validation" if bucket == 0 else "test"


def _overlapped_split(spec: ClipSpec) -> str:
    """LipNet's overlapped speakers: 255 in 1000 sentences held out, half validating, half
    testing. The hash is of the sentence alone, so each speaker loses about 255 of its 1000
    (whatever subset is read) and a sentence said by several speakers sits in one split."""
    bucket = _bucket(f"overlapped:{sentence_of(spec)}", OVERLAPPED_BUCKETS)
    if bucket >= OVERLAPPED_HELD_OUT:
        return "train"
    return "validation" if bucket < OVERLAPPED_VALIDATION else "test"


def grid_split_of(rule: str):
    """The function `ClipSpec -> "train" | "validation" | "test"` of a split rule.

    "sentence": `grid_split` of the sentence id (speaker-blind, the rule of every prepared set
    before the others existed); "unseen" and "overlapped": LipNet's speaker-disjoint and
    per-speaker splits (they need each clip's speaker). All are hashes: stable across
    machines and corpus subsets.
    """
    if rule == "sentence":
        return lambda spec: grid_split(sentence_of(spec))
    rules = {"unseen": _unseen_split, "overlapped": _overlapped_split}
    if rule not in rules:
        raise ConfigError(f"unknown split {rule!r}; choose from {', '.join(GRID_SPLITS)}")

    def split_of(spec: ClipSpec) -> str:
        if not spec.speaker:
            raise ConfigError(
                f"split {rule!r} needs each clip's speaker, and clip {spec.id!r} has none "
                "(GRID reads it from the s<N> folder; a manifest from its speaker field)"
            )
        return rules[rule](spec)

    return split_of


def speaker_clip_ids(specs: Iterable[ClipSpec]) -> list[ClipSpec]:
    """The clips with ids unique across speakers: `s<N>/<id>` when more than one speaker is
    read (GRID's speakers say the same sentences), unchanged for a single speaker."""
    specs = list(specs)
    if len({spec.speaker for spec in specs}) <= 1:
        return specs
    return [dataclasses.replace(spec, id=f"{spec.speaker}/{spec.id}") for spec in specs]


def grid_sentence_id(words: Sequence[str]) -> str:
    """The GRID id of a six-word sentence, e.g. bin blue at f two now -> bbaf2n."""
    if len(words) != len(GRID_GRAMMAR):
        raise ValueError(f"a GRID sentence has 6 words, got {len(words)}: {' '.join(words)}")
    for word, (slot, choices) in zip(words, GRID_GRAMMAR.items(), strict=True):
        if word not in choices:
            raise ValueError(f"{word!r} is not a GRID {slot}")
    digit = GRID_GRAMMAR["digit"].index(words[4])
    numeral = "z" if digit == 0 else str(digit)
    return f"{words[0][0]}{words[1][0]}{words[2][0]}{words[3]}{numeral}{words[5][0]}"


def grid_id_to_words(clip_id: str) -> list[str]:
    """The six words a GRID id spells, e.g. bbaf2n -> bin blue at f two now."""
    if len(clip_id) != 6:
        raise ValueError(f"a GRID id has 6 characters, got {clip_id!r}")
    words = []
    for ch, (slot, choices) in zip(clip_id, GRID_GRAMMAR.items(), strict=True):
        if slot == "letter":
            matches = [ch] if ch in choices else []
        elif slot == "digit":
            matches = [choices[0]] if ch == "z" else [choices[int(ch)]] if ch.isdigit() else []
        else:
            matches = [w for w in choices if w[0] == ch]
        if len(matches) != 1:
            raise ValueError(f"{clip_id!r}: {ch!r} names no GRID {slot}")
        words.append(matches[0])
    return words


def _frame(time: str) -> int:
    """A GRID time (1/1000 frame) as a frame index, rounding half up."""
    return int(int(time) / 1000 + 0.5)


def read_grid_alignment(path: str | Path) -> tuple[list[Word], list[str]]:
    """All segments of an .align file, silences included, as frames; and the problems found."""
    segments: list[Word] = []
    problems: list[str] = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return [], ["unreadable_alignment"]
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 3:
                raise ValueError(line)
            segments.append((_frame(fields[0]), _frame(fields[1]), fields[2]))
        except ValueError:
            problems.append(f"bad_alignment_line:{number}")
    return segments, problems


def _speaker_name(speaker: str | int) -> str:
    """'s3' for 3, '3' or 's3'."""
    name = str(speaker)
    return name if name.startswith("s") else f"s{name}"


def _speaker_dirs(root: Path) -> tuple[Path, list[Path]]:
    """The corpus root and its speaker directories, sorted by speaker number."""
    if not root.exists():
        raise CorpusNotFoundError(f"GRID root {root} does not exist")
    if not root.is_dir():
        raise CorpusNotADirectoryError(f"GRID root {root} is not a directory")
    dirs = [p for p in root.iterdir() if p.is_dir() and _SPEAKER_RE.match(p.name)]
    if dirs:
        return root, sorted(dirs, key=lambda p: int(p.name[1:]))
    if _SPEAKER_RE.match(root.name):
        return root.parent, [root]
    raise CorpusLayoutError(
        f"{root} is not a GRID corpus: no speaker directories s<N> (e.g. s1/video/bbaf2n.mp4 "
        "or s1/bbaf2n.mpg) below it"
    )


def _alignment_dirs(corpus_root: Path, speaker_dir: Path) -> list[Path]:
    """Where alignments of one speaker may live, in lookup order."""
    speaker = speaker_dir.name
    candidates = [
        speaker_dir / "align",
        corpus_root / "alignments" / speaker,
        corpus_root / "align" / speaker,
        speaker_dir / "alignments",
        speaker_dir,
        corpus_root / "align",
    ]
    return [d for d in candidates if d.is_dir()]


def _videos(speaker_dir: Path) -> dict[str, Path]:
    """Video files below a speaker directory by id; .mp4 wins over other containers."""
    found: dict[str, Path] = {}
    for path in sorted(speaker_dir.rglob("*")):
        suffix = path.suffix.lower()
        if suffix not in VIDEO_SUFFIXES or not path.is_file():
            continue
        current = found.get(path.stem)
        if current is None or VIDEO_SUFFIXES.index(suffix) < VIDEO_SUFFIXES.index(
            current.suffix.lower()
        ):
            found[path.stem] = path
    return found


def _alignments(align_dirs: list[Path], shared_root_align: Path | None) -> dict[str, Path]:
    """Alignment files by id; earlier directories win. The shared root/align is lookup-only."""
    found: dict[str, Path] = {}
    for directory in align_dirs:
        if directory == shared_root_align:
            continue
        for path in sorted(directory.glob(f"*{ALIGN_SUFFIX}")):
            found.setdefault(path.stem, path)
    return found


def _clip(
    clip_id: str, speaker: str, video: Path | None, align: Path | None, default_video: Path
) -> ClipSpec:
    """One ClipSpec from a video path and an alignment path, either possibly missing."""
    problems: list[str] = []
    words: list[Word] | None = None
    if align is None:
        problems.append("missing_alignment")
    else:
        segments, align_problems = read_grid_alignment(align)
        problems += align_problems
        words = [w for w in segments if w[2].lower() not in SILENCE_WORDS]
        if not words and "unreadable_alignment" not in problems:
            problems.append("empty_alignment")
    raw = " ".join(w for _, _, w in words or [])
    return make_clip_spec(
        clip_id,
        video if video is not None else default_video,
        raw,
        speaker=speaker,
        words=words,
        problems=problems,
        charset=CHARSET,
    )


def iter_grid(root: str | Path, speakers: Iterable[str | int] | None = None) -> Iterator[ClipSpec]:
    """Yield one ClipSpec per GRID clip (a video, an alignment or both) under `root`.

    `speakers` selects speaker directories ("s1", "1" or 1); asking for an absent one raises.
    Clips come sorted by speaker number, then id.
    """
    corpus_root, speaker_dirs = _speaker_dirs(Path(root).expanduser())
    if speakers is not None:
        wanted = {_speaker_name(s) for s in speakers}
        available = {d.name for d in speaker_dirs}
        if missing := wanted - available:
            raise CorpusLayoutError(
                f"speakers {sorted(missing)} not found under {root}; have {sorted(available)}"
            )
        speaker_dirs = [d for d in speaker_dirs if d.name in wanted]
    root_align = corpus_root / "align"
    for speaker_dir in speaker_dirs:
        align_dirs = _alignment_dirs(corpus_root, speaker_dir)
        lookup_only = root_align if len(speaker_dirs) > 1 else None
        videos = _videos(speaker_dir)
        aligns = _alignments(align_dirs, lookup_only)
        if lookup_only is not None and lookup_only in align_dirs:
            for clip_id in videos.keys() - aligns.keys():
                candidate = lookup_only / f"{clip_id}{ALIGN_SUFFIX}"
                if candidate.is_file():
                    aligns[clip_id] = candidate
        if (speaker_dir / "video").is_dir():
            video_dir, default_suffix = speaker_dir / "video", ".mp4"
        else:
            video_dir, default_suffix = speaker_dir, ".mpg"
        for clip_id in sorted(videos.keys() | aligns.keys()):
            yield _clip(
                clip_id,
                speaker_dir.name,
                videos.get(clip_id),
                aligns.get(clip_id),
                video_dir / f"{clip_id}{default_suffix}",
            )
