"""Enrolment's choices that need no training: which clips are held back, and the run an
export's own experiment becomes. (The whole path, from an export to an enrolled export, runs
in tests/pipelines/tasks/test_lipreading_pipeline.py on its trained model.)"""

from pathlib import Path

from configs import grid_lipnet
from pipelines.enrolment import HELD_BACK, TRAIN, EnrolmentPlan, enrolment_config, split_clips


def test_a_fifth_of_the_clips_is_held_back_spread_over_the_ids():
    ids = [f"clip{i:02d}" for i in range(10)]
    splits = split_clips(list(reversed(ids)), 0.2)
    held = sorted(i for i, s in splits.items() if s == HELD_BACK)
    assert held == ["clip00", "clip05"]
    assert sum(s == TRAIN for s in splits.values()) == 8
    assert split_clips(ids[:4], 0.2) == {**dict.fromkeys(ids[:4], TRAIN), "clip00": HELD_BACK}
    assert set(split_clips(ids[:3], 0.2).values()) == {TRAIN}  # too few to hold any back
    assert set(split_clips(ids, 0.0).values()) == {TRAIN}


def test_the_run_is_the_exports_experiment_retargeted_at_the_speaker():
    base = grid_lipnet.get_config()
    plan = EnrolmentPlan(minutes=2.0, max_steps=30, batch_size=4, patience=2)
    config = enrolment_config(base, Path("exports/base"), Path("runs/me/data"), plan, "attention")
    assert config.model.to_dict() == base.model.to_dict()
    assert config.data.preset == base.data.preset
    assert config.decode.validation_mode == "attention"
    assert {**config.decode.to_dict(), "validation_mode": ""} == base.decode.to_dict()
    assert (config.init_from, config.data.prepared_dir) == ("exports/base", "runs/me/data")
    assert (config.data.train_split, config.data.eval_split) == (TRAIN, HELD_BACK)
    assert (config.num_train_steps, config.max_train_minutes, config.batch_size) == (30, 2.0, 4)
    assert config.learning_rate < base.learning_rate
    assert config.early_stopping_patience == 2 and config.freeze_frontend_steps == 50


def test_a_speaker_none_of_whose_clips_could_be_prepared_is_a_one_line_error(tmp_path, monkeypatch):
    """Preparation lists a split whose every clip was skipped, with no examples: enrolment
    says why nothing can be learnt instead of failing inside training."""
    from types import SimpleNamespace

    import pytest

    import pipelines.enrolment as enrolment
    from data_prep.errors import NotPreparedError

    nothing = {"splits": {TRAIN: {"num_examples": 0}}, "skipped_by_reason": {"no_face": 3}}
    clips = [SimpleNamespace(id=f"clip{i}") for i in range(3)]
    monkeypatch.setattr(enrolment, "evaluation_clips", lambda videos, dataset: clips)
    monkeypatch.setattr(enrolment, "prepare_lipreading", lambda *args, **kwargs: nothing)
    monkeypatch.setattr(enrolment, "train", lambda *args: pytest.fail("trained on nothing"))
    with pytest.raises(NotPreparedError, match=r"3 found; skipped by reason: \{'no_face': 3\}"):
        enrolment.enrol("grid_s1", tmp_path / "clips", tmp_path / "enrolled")
