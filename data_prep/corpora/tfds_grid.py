"""A TFDS builder over a local, raw GRID directory: `tfds.load("grid_lipreading", ...)`.

Nothing is downloaded. Point the builder at a GRID root (either layout `iter_grid` reads)
through the manual directory, or through a custom config:

    import tensorflow_datasets as tfds
    import data_prep.corpora.tfds_grid  # registers "grid_lipreading"

    ds = tfds.load(
        "grid_lipreading", split="train", data_dir="/tmp/tfds",
        download_and_prepare_kwargs={
            "download_config": tfds.download.DownloadConfig(manual_dir="../shared/data/grid")},
    )
    # or: tfds.builder("grid_lipreading", data_dir=..., config=GridLipreadingConfig(
    #         name="s1_local", root="../shared/data/grid", speakers=("s1",)))

Without either, the manual directory defaults to `<data_dir>/downloads/manual/`. Configs:
`paths` (default) stores the id, speaker, video path, transcript and word timings; `video_bytes`
adds the encoded video file. Splits follow `grid_split` (a split no clip falls in, possible
on a tiny corpus, is left out). Clips with problems (missing video or
alignment, empty alignment, ...) are skipped and logged. This reads the raw corpus; the
preprocessed TFRecords our pipeline writes (mouth crops, `data_prep/records.py`) are a
separate directory with its own manifest.json and are not read through this builder.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from data_prep.corpora.grid import grid_split, iter_grid
from data_prep.corpora.transcripts import ClipSpec

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(eq=False)
class GridLipreadingConfig(tfds.core.BuilderConfig):
    """GRID root (None: the manual dir), speakers (None: all) and whether to embed videos."""

    root: str | None = None
    speakers: tuple[str, ...] | None = None
    include_video: bool = False


class GridLipreading(tfds.core.GeneratorBasedBuilder):
    """GRID sentences from a local directory: ids, transcripts, word timings and videos."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Raw GRID from a local directory, split by grid_split."}
    BUILDER_CONFIGS = [
        GridLipreadingConfig(
            name="paths", description="Video file paths, transcripts and word timings."
        ),
        GridLipreadingConfig(
            name="video_bytes",
            description="As `paths`, plus the encoded video file's bytes.",
            include_video=True,
        ),
    ]
    DEFAULT_CONFIG_NAME = "paths"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put (or link) a GRID corpus directory in the manual dir, or pass "
        "download_config=tfds.download.DownloadConfig(manual_dir=<grid root>). Accepted "
        "layouts: s<N>/video/<id>.mp4 + s<N>/align/<id>.align, or the corpus' own "
        "s<N>/<id>.mpg + align/<id>.align or alignments/s<N>/<id>.align."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        """Features: id, speaker, video_path, transcript, words (and video for video_bytes)."""
        features = {
            "id": tfds.features.Text(),
            "speaker": tfds.features.Text(),
            "video_path": tfds.features.Text(),
            "transcript": tfds.features.Text(),
            "words": tfds.features.Sequence(
                {"start": np.int32, "end": np.int32, "word": tfds.features.Text()}
            ),
        }
        if self.builder_config.include_video:
            features["video"] = tfds.features.Tensor(shape=(), dtype=np.object_)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(features),
            supervised_keys=("video_path", "transcript"),
            homepage="https://spandh.dcs.shef.ac.uk/gridcorpus/",
            citation=(
                "@article{cooke2006grid, title={An audio-visual corpus for speech perception "
                "and automatic speech recognition}, author={Cooke, Martin and Barker, Jon and "
                "Cunningham, Stuart and Shao, Xu}, journal={JASA}, volume={120}, number={5}, "
                "pages={2421--2424}, year={2006}}"
            ),
        )

    def _grid_root(self, dl_manager: tfds.download.DownloadManager) -> Path:
        """The configured root, else the manual directory."""
        if self.builder_config.root:
            return Path(self.builder_config.root).expanduser()
        return Path(dl_manager.manual_dir)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        """train/validation/test generators over the usable clips; empty splits are left out."""
        clips = list(iter_grid(self._grid_root(dl_manager), self.builder_config.speakers))
        usable = [c for c in clips if c.ok]
        if skipped := len(clips) - len(usable):
            reasons = collections.Counter(p.split(":")[0] for c in clips for p in c.problems)
            logging.warning("grid_lipreading: skipped %d clips: %s", skipped, dict(reasons))
        by_split: dict[str, list[ClipSpec]] = {name: [] for name in SPLITS}
        for clip in usable:
            by_split[grid_split(clip.id)].append(clip)
        if not usable:
            raise ValueError(f"no usable GRID clips under {self._grid_root(dl_manager)}")
        if empty := [name for name in SPLITS if not by_split[name]]:
            logging.warning("grid_lipreading: no clips fall in split(s) %s; left out", empty)
        return {name: self._generate_examples(by_split[name]) for name in SPLITS if by_split[name]}

    def _generate_examples(self, clips: list[ClipSpec]) -> Iterator[tuple[str, dict]]:
        """(key, example) per clip; the key is speaker/id."""
        for clip in clips:
            words = clip.words or []
            example = {
                "id": clip.id,
                "speaker": clip.speaker or "",
                "video_path": str(clip.video_path),
                "transcript": clip.transcript,
                "words": {
                    "start": [w[0] for w in words],
                    "end": [w[1] for w in words],
                    "word": [w[2] for w in words],
                },
            }
            if self.builder_config.include_video:
                example["video"] = clip.video_path.read_bytes()
            yield f"{clip.speaker}/{clip.id}", example
