"""configs/upgrade.py: configs stored by older lipseq versions read every key of today's."""

import json
from pathlib import Path

import ml_collections
import pytest

from configs import grid_lipnet, grid_wlas, multi30k_words
from configs.common import base_config, translation_config
from configs.lipreading_common import lipreading_config
from configs.upgrade import DEFAULTS, upgrade_config
from pipelines.tasks import REGISTRY

RELEASE_INFO = Path(__file__).resolve().parents[2] / (
    "models/releases/grid_s1/export/assets.extra/lipseq.json"
)


def _paths(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """Every key of a config as dotted paths, down to the leaves."""
    paths = []
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            paths += _paths(value, f"{prefix}{key}.")
        else:
            paths.append(f"{prefix}{key}")
    return paths


def _read(config: ml_collections.ConfigDict, path: str):
    for key in path.split("."):
        config = getattr(config, key)  # attribute access, as the code reads keys
    return config


def _stored(config: ml_collections.ConfigDict) -> dict:
    """A config as an export or a workdir stores it (JSON: tuples become lists)."""
    return json.loads(config.to_json())


def test_the_shipped_release_reads_every_key_of_today():
    info = json.loads(RELEASE_INFO.read_text())
    stored = info["config"]
    config = upgrade_config(stored, info["task"])
    today = lipreading_config()
    for path in _paths(today):
        _read(config, path)
    # What the release stored is kept, in the config's own form (tuples, not lists).
    assert config.data.preset == "gray80"
    assert config.data.crop_size == (36, 72)
    assert config.model.lipnet_kernels == ((3, 5, 5), (3, 3, 3), (3, 3, 3))
    assert config.decode.serving_default == "attention"
    # Keys added after it take today's defaults, which are what the code read without them.
    assert "crop_jitter_ramp_below_epochs" not in stored["data"]
    assert config.data.crop_jitter_ramp_below_epochs == 0
    assert "frame_label_weight" not in stored["model"]
    assert config.model.frame_label_weight == 0.0
    # It stored mixed_precision as a bool; today it names a type.
    assert stored["mixed_precision"] is False and config.mixed_precision == ""


@pytest.mark.parametrize(
    "config", [grid_lipnet.get_config(), grid_wlas.get_config(), multi30k_words.get_config()]
)
def test_a_config_stored_today_comes_back_unchanged(config):
    upgraded = upgrade_config(_stored(config), config.task)
    assert upgraded.to_dict() == config.to_dict()


def test_missing_keys_take_the_defaults_of_the_task():
    stored = _stored(translation_config())
    del stored["model"]["frame_label_weight"], stored["decode"]["lm_weight"], stored["seed"]
    config = upgrade_config(stored, "translation")
    assert config.model.frame_label_weight == 0.0
    assert config.decode.lm_weight == 0.3
    assert config.seed == 42


def test_missing_keys_keep_the_meaning_older_code_gave_them():
    stored = _stored(grid_wlas.get_config())
    del stored["decode"]["ctc_heads"], stored["data"]["noise"]
    config = upgrade_config(stored, "audio_visual")
    assert config.decode.ctc_heads == "primary"  # joint decoding read the primary's CTC head
    assert config.data.noise == "none"
    stored = _stored(multi30k_words.get_config())
    del stored["data"]["dictionary_size"]
    assert upgrade_config(stored, "translation").data.dictionary_size == 0


def test_a_dict_valued_key_is_kept_whole():
    stored = _stored(grid_wlas.get_config())
    stored["model"]["streams"] = {"video": {"frontend": "lipnet"}}
    config = upgrade_config(stored, "audio_visual")
    assert list(config.model.streams) == ["video"]


def test_mixed_precision_true_meant_float16():
    stored = _stored(lipreading_config())
    stored["mixed_precision"] = True
    assert upgrade_config(stored, "lipreading").mixed_precision == "float16"


def test_a_task_without_defaults_gets_the_shared_keys():
    stored = {"task": "reverse", "model": {"embedding_dim": 16}}
    config = upgrade_config(stored, "reverse")
    assert config.model.embedding_dim == 16
    assert set(_paths(config)) == set(_paths(base_config("reverse")))


def test_every_task_of_the_project_has_defaults():
    def ours(entry) -> bool:  # the tests register tasks of their own
        module = entry if isinstance(entry, str) else entry.__module__
        return module.startswith("pipelines.")

    assert {name for name, entry in REGISTRY.items() if ours(entry)} <= set(DEFAULTS)
