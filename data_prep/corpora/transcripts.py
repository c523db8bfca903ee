"""The record every video-corpus reader yields, and transcript normalisation.

Character set: `CHARSET` is lowercase a-z, space, apostrophe and the digits 0-9. GRID needs
only a-z and space (`GRID_CHARSET`); LRS2/LRS3 transcripts also contain apostrophes
("DON'T") and, rarely, digits, so the default keeps them rather than silently dropping them.
Everything else (punctuation, accented letters, symbols) is out of set: it is dropped from the
normalised transcript and reported, so a reader records it as a problem on the clip.

Problems a reader may record on a clip (`ClipSpec.problems`):
  missing_video, missing_alignment, empty_alignment, unreadable_alignment,
  bad_alignment_line:<n>, missing_transcript, missing_text_line, bad_word_line:<n>,
  empty_transcript, out_of_set_characters:<chars>, bad_manifest_row:<line>, duplicate_id.
A clip with no problems is usable as is; readers never raise for a single bad clip.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

CHARSET: frozenset[str] = frozenset(string.ascii_lowercase + string.digits + " '")
GRID_CHARSET: frozenset[str] = frozenset(string.ascii_lowercase + " ")

Word = tuple[int, int, str]


def normalize_transcript(text: str, charset: Iterable[str] = CHARSET) -> tuple[str, set[str]]:
    """NFKC, lowercase, drop out-of-set characters, collapse spaces; returns (text, dropped)."""
    allowed = charset if isinstance(charset, (set, frozenset)) else frozenset(charset)
    lowered = " ".join(unicodedata.normalize("NFKC", text).lower().split())
    dropped = {ch for ch in lowered if ch not in allowed and ch != " "}
    kept = "".join(ch for ch in lowered if ch in allowed or ch == " ")
    return " ".join(kept.split()), dropped


def out_of_set_problem(dropped: Iterable[str]) -> str:
    """The problem string naming out-of-set characters, sorted: out_of_set_characters:<chars>."""
    return "out_of_set_characters:" + "".join(sorted(dropped))


@dataclass
class ClipSpec:
    """One clip of a video corpus: where the video is and what is said in it.

    `transcript` is normalised (see `normalize_transcript`); `raw_transcript` is as read.
    `words` holds (start_frame, end_frame, word) with the end exclusive, or None when the
    corpus gives no timings. `problems` lists what is wrong with the clip (empty when usable).
    """

    id: str
    video_path: Path
    transcript: str
    raw_transcript: str
    speaker: str | None = None
    words: list[Word] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the clip has no problems."""
        return not self.problems


def make_clip_spec(
    clip_id: str,
    video_path: Path,
    raw_transcript: str,
    *,
    speaker: str | None = None,
    words: list[Word] | None = None,
    problems: Iterable[str] = (),
    charset: Iterable[str] = CHARSET,
    check_video: bool = True,
) -> ClipSpec:
    """Normalise the transcript and build a ClipSpec, recording transcript and video problems."""
    found = list(problems)
    if check_video and not video_path.is_file():
        found.insert(0, "missing_video")
    transcript, dropped = normalize_transcript(raw_transcript, charset)
    if dropped:
        found.append(out_of_set_problem(dropped))
    if words is not None:
        words = [(start, end, normalize_transcript(word, charset)[0]) for start, end, word in words]
        words = [w for w in words if w[2]]
    if not transcript and not any(p.split(":")[0] in _EXPLAINS_EMPTY for p in found):
        found.append("empty_transcript")
    return ClipSpec(
        id=clip_id,
        video_path=video_path,
        transcript=transcript,
        raw_transcript=raw_transcript,
        speaker=speaker,
        words=words,
        problems=found,
    )


_EXPLAINS_EMPTY = frozenset(
    {
        "missing_alignment",
        "empty_alignment",
        "unreadable_alignment",
        "missing_transcript",
        "missing_text_line",
        "bad_manifest_row",
    }
)
