"""LRS2 / LRS3 (BBC and TED lip reading sentences): `<dir>/<id>.mp4` beside `<id>.txt`.

A transcript file starts with `Text:  SOME WORDS`; other header lines (`Conf:`, `Ref:`) may
follow, and pretraining files add a table `WORD START END ASDSCORE` with times in seconds,
read here as frames at 25 fps (`round(seconds * 25)`, end exclusive). A clip's id is its path
relative to the root without the suffix (e.g. `5535415699068794046/00001`); its speaker is
the name of the directory holding it (a programme in LRS2, a YouTube video in LRS3).
Text files with neither a video beside them nor a `Text:` line (the split lists
`train.txt`, `val.txt`, `test.txt`) are not clips and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from data_prep.corpora.transcripts import CHARSET, ClipSpec, Word, make_clip_spec
from data_prep.errors import CorpusLayoutError, CorpusNotADirectoryError, CorpusNotFoundError

LRS_FPS = 25.0
VIDEO_SUFFIX = ".mp4"
TEXT_SUFFIX = ".txt"
TEXT_KEY = "Text:"
WORD_TABLE_HEADER = ("WORD", "START", "END")


def _word_row(fields: list[str], fps: float) -> Word | None:
    """(start_frame, end_frame, word) from `WORD START END [SCORE]`, or None if malformed."""
    if len(fields) < 3:
        return None
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        return None
    if not 0.0 <= start <= end:
        return None
    return int(round(start * fps)), int(round(end * fps)), fields[0]


def parse_lrs_transcript(
    text: str, fps: float = LRS_FPS
) -> tuple[str | None, list[Word] | None, list[str]]:
    """The `Text:` line, the word table as frames (None if absent) and the problems found."""
    raw: str | None = None
    words: list[Word] | None = None
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if raw is None and stripped.startswith(TEXT_KEY):
            raw = stripped[len(TEXT_KEY) :].strip()
            continue
        fields = stripped.split()
        if tuple(f.upper() for f in fields[:3]) == WORD_TABLE_HEADER:
            words = []
        elif words is not None and fields:
            word = _word_row(fields, fps)
            if word is None:
                problems.append(f"bad_word_line:{number}")
            else:
                words.append(word)
    if raw is None:
        problems.insert(0, "missing_text_line")
    return raw, words, problems


def _is_transcript(path: Path) -> bool:
    """Whether a text file looks like an LRS transcript (its first non-empty line is Text:)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.strip():
                    return line.strip().startswith(TEXT_KEY)
    except OSError:
        return False
    return False


def _with_suffix(stem: Path, suffix: str) -> Path:
    """`stem` plus a suffix, keeping any dots already in its name."""
    return stem.with_name(stem.name + suffix)


def _clip(root: Path, stem: Path, has_text: bool) -> ClipSpec:
    """One ClipSpec from `stem` (a path without suffix) and whether its transcript exists."""
    problems: list[str] = []
    raw, words = "", None
    content = None
    if has_text:
        try:
            content = _with_suffix(stem, TEXT_SUFFIX).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            content = None
    if content is None:
        problems.append("missing_transcript")
    else:
        parsed, words, found = parse_lrs_transcript(content)
        raw = parsed or ""
        problems += found
    return make_clip_spec(
        stem.relative_to(root).as_posix(),
        _with_suffix(stem, VIDEO_SUFFIX),
        raw,
        speaker=stem.parent.name if stem.parent != root else None,
        words=words,
        problems=problems,
        charset=CHARSET,
    )


def iter_lrs(root: str | Path) -> Iterator[ClipSpec]:
    """Yield one ClipSpec per LRS clip below `root` (any depth), sorted by id."""
    root = Path(root).expanduser()
    if not root.exists():
        raise CorpusNotFoundError(f"LRS root {root} does not exist")
    if not root.is_dir():
        raise CorpusNotADirectoryError(f"LRS root {root} is not a directory")
    videos = {p.with_suffix("") for p in root.rglob(f"*{VIDEO_SUFFIX}") if p.is_file()}
    texts = {p.with_suffix("") for p in root.rglob(f"*{TEXT_SUFFIX}") if p.is_file()}
    texts_only = {s for s in texts - videos if _is_transcript(_with_suffix(s, TEXT_SUFFIX))}
    stems = videos | texts_only
    if not stems:
        raise CorpusLayoutError(
            f"{root} is not an LRS corpus: no <dir>/<id>.mp4 videos or <id>.txt transcripts"
        )
    for stem in sorted(stems, key=lambda s: s.relative_to(root).as_posix()):
        yield _clip(root, stem, stem in texts)
