"""A config stored by an older lipseq brought up to today's keys, so code can read every key.

An export's `assets.extra/lipseq.json` ("config") and a training workdir's `config.json` hold
the resolved config of their run as it was then. Code reads keys directly
(`config.data.crop_jitter_ramp_below_epochs`), so a config stored before a key existed is
upgraded once, where it is loaded:

    config = upgrade_config(info["config"], info["task"])                  # an export
    config = upgrade_config(json.loads(path.read_text()), stored["task"])  # a workdir

Every stored value is kept; a key the stored config lacks takes today's default for the task,
or, where the code of the time read a missing key as something other than today's default,
that older meaning (LEGACY), so an old run behaves as it did. No key has been renamed in the
project's history; one has changed form (`mixed_precision`, a bool before it named a type).
"""

from __future__ import annotations

from collections.abc import Callable

import ml_collections

from configs.common import base_config, language_model_config, translation_config
from configs.lipreading_common import audio_visual, lipreading_config


def _audio_visual_config() -> ml_collections.ConfigDict:
    # Every stored audio-visual config has model.stream_dropout (audio_visual() requires it);
    # 0.0 is what the code read when it was missing.
    return audio_visual(lipreading_config(), stream_dropout=0.0)


DEFAULTS: dict[str, Callable[[], ml_collections.ConfigDict]] = {
    "translation": translation_config,
    "language_model": language_model_config,
    "lipreading": lipreading_config,
    "audio_visual": _audio_visual_config,
}

# What a missing key meant to the code that read the stored config, where that differs from
# today's default ("section.key" -> value).
LEGACY: dict[str, dict[str, object]] = {
    # Before decode.ctc_heads, joint decoding scored with the primary stream's CTC head alone.
    # Before data.noise, training added no noise.
    "audio_visual": {"decode.ctc_heads": "primary", "data.noise": "none"},
    # Before data.dictionary_size, word vocabularies were prepared without dictionaries.
    "translation": {"data.dictionary_size": 0},
}


def upgrade_config(stored: dict, task: str) -> ml_collections.ConfigDict:
    """The config `stored` (its JSON form) with every key of today's defaults for `task`.

    Args:
      stored: a resolved config as JSON stored it (lists where the config had tuples).
      task: the registry name of the task the config is for; a task without defaults here (a
        test's own task) gets the keys every task shares (configs/common.py: base_config).

    Returns:
      An unlocked ConfigDict, tuples restored: today's defaults, then LEGACY's older meanings
      of missing keys, then every stored value over them. Sections (`data`, `model`,
      `decode`) merge key by key; a dict-valued key inside one (`model.streams`) is kept whole.
    """
    defaults = DEFAULTS[task]() if task in DEFAULTS else base_config(task)
    values = defaults.to_dict()
    for dotted, value in LEGACY.get(task, {}).items():
        section, key = dotted.split(".")
        values[section][key] = value
    for key, value in stored.items():
        value = _tuples(value)
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key].update(value)
        else:
            values[key] = value
    values["mixed_precision"] = _precision(values["mixed_precision"])
    return ml_collections.ConfigDict(values)


def _precision(setting) -> str:
    """config.mixed_precision as today's names: older configs stored True (float16) or False."""
    if setting is True:
        return "float16"
    return setting or ""


def _tuples(value):
    """A JSON value with its lists made tuples again (the config's own form)."""
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value
