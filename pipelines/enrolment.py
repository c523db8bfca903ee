"""Enrolment: a lip-reading export adapted to one new speaker from a few of their clips.

    summary = enrol("grid_s1", "my_clips/", "runs/me")   # -> runs/me/export, any verb reads it

The speaker's clips (a GRID, LRS or manifest layout; transcripts from the corpus, GRID ids
spell their own) are prepared with the export's own settings, a few are held back, and the
model trains from the export's weights at a low rate, the front-end still for the first
steps, stopping early on the held-back clips; the best checkpoint becomes a new export. The
held-back clips are read by the export before and after, so the summary says what enrolment
bought on clips it did not train on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ml_collections

from data_prep.atomic import write_json_atomic
from data_prep.errors import ConfigError, NotPreparedError
from data_prep.lipreading import evaluation_clips, prepare_lipreading
from pipelines.artifacts.exports import export_config, resolve_export
from pipelines.inference.lipreading import LipReadingExport
from pipelines.serving.export import export_model
from pipelines.tasks.lipreading import evaluate_lipreading, read_prepared_clips
from pipelines.training.loop import train

TRAIN, HELD_BACK = "train", "validation"


@dataclasses.dataclass(frozen=True)
class EnrolmentPlan:
    """How an enrolment trains; the defaults suit a few tens of clips on a laptop CPU."""

    minutes: float = 8.0  # wall-clock budget of the training part
    max_steps: int = 400
    held_back: float = 0.2  # share of the clips kept for early stopping and the summary
    learning_rate: float = 3e-4  # a tenth of the recipe's: adapt, do not relearn
    freeze_frontend_steps: int = 50
    batch_size: int = 8
    eval_every: int = 25
    patience: int = 4  # evaluations without a better held-back WER before stopping
    mode: str = ""  # the decoding signature scored before and after ("": the export's default)


def split_clips(ids: list[str], held_back: float) -> dict[str, str]:
    """id -> train or validation: every k-th clip by id held back (none under 4 clips)."""
    ordered = sorted(ids)
    count = max(1, round(len(ordered) * held_back)) if held_back > 0 and len(ordered) >= 4 else 0
    kept_back = {ordered[i * len(ordered) // count] for i in range(count)}
    return {clip_id: HELD_BACK if clip_id in kept_back else TRAIN for clip_id in ordered}


def enrolment_config(
    base: ml_collections.ConfigDict,
    export_dir: Path,
    prepared_dir: Path,
    plan: EnrolmentPlan,
    scored_mode: str,
) -> ml_collections.ConfigDict:
    """The export's own experiment, retargeted at the speaker's clips with the plan's steps;
    validation (best checkpoint, early stopping) decodes `scored_mode`."""
    config = ml_collections.ConfigDict(base.to_dict())
    config.data.prepared_dir = str(prepared_dir)
    config.data.train_split, config.data.eval_split = TRAIN, HELD_BACK
    config.data.workers = 1
    config.init_from = str(export_dir)
    config.init_stream = ""
    config.freeze_frontend_steps = plan.freeze_frontend_steps
    config.learning_rate = plan.learning_rate
    config.min_learning_rate = plan.learning_rate / 10
    config.warmup_steps = 0
    config.num_train_steps = config.decay_steps = plan.max_steps
    config.max_train_minutes = plan.minutes
    config.batch_size = plan.batch_size
    config.eval_every = config.checkpoint_every = plan.eval_every
    config.early_stopping_patience = plan.patience
    config.decode.validation_mode = scored_mode
    return config


def _wer(export: Path, clips: list[dict], signature: str) -> float:
    report = evaluate_lipreading(export, clips, [signature], batch_size=8)
    return report["summary"]["modes"][signature]["wer"]


def enrol(
    model: str | Path, videos: str | Path, workdir: str | Path, plan: EnrolmentPlan | None = None
) -> dict:
    """Adapts `model` to the speaker of `videos`; the new export is workdir/export."""
    plan = plan or EnrolmentPlan()
    workdir = Path(workdir)
    export_dir = resolve_export(model)
    base = LipReadingExport(export_dir)
    if base.modalities != ("video",):
        modalities = ", ".join(base.modalities)
        raise ConfigError(f"{model} reads {modalities}: enrolment adapts lip readers")
    scored = base.entry(plan.mode or None)  # ConfigError now, not after training
    config = export_config(base.info)
    specs = evaluation_clips(videos, config.data.dataset)
    splits = split_clips([spec.id for spec in specs], plan.held_back)
    prepared_dir = workdir / "data"
    settings = dataclasses.replace(base.settings, strict=False)
    manifest = prepare_lipreading(
        specs, prepared_dir, settings, workers=1, split_of=lambda spec: splits[spec.id]
    )
    # A split every clip of which was skipped is still listed, with no examples.
    filled = {name for name, entry in manifest["splits"].items() if entry["num_examples"]}
    if TRAIN not in filled:
        raise NotPreparedError(
            f"no clip of {videos} could be prepared for enrolment ({len(specs)} found; "
            f"skipped by reason: {manifest['skipped_by_reason'] or 'none'})"
        )
    run = enrolment_config(config, export_dir, prepared_dir, plan, scored.mode)
    summary = train(run, workdir / "train")
    has_held_back = HELD_BACK in filled
    checkpoint = "best" if has_held_back else "latest"
    enrolled = export_model(workdir / "train", workdir / "export", checkpoint)
    result = {
        "model": str(model),
        "export": str(enrolled),
        "clips": {s: e["num_examples"] for s, e in manifest["splits"].items()},
        "skipped_by_reason": manifest["skipped_by_reason"],
        "steps": summary["final_step"],
        "train_minutes": round(summary["run_train_minutes"], 2),
    }
    if has_held_back:
        held = read_prepared_clips(prepared_dir, HELD_BACK)
        result["held_back_wer"] = {
            "mode": scored.mode_name,
            "clips": len(held),
            "before": _wer(export_dir, held, scored.name),
            "after": _wer(enrolled, held, scored.name),
        }
    write_json_atomic(workdir / "enrolment.json", result, indent=2)
    return result
