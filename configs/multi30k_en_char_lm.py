"""A character language model of English image captions (Multi30k's English side), in the
lip-reading characters: an open-vocabulary prior for lip reading by shallow fusion.

    lipseq prepare --config=configs/multi30k_en_char_lm.py
    lipseq train --config=configs/multi30k_en_char_lm.py --workdir=runs/lm/multi30k_en_char
"""

from configs.common import finish, language_model_config, unknown_variant
from data_prep.paths import shared_data_dir


def get_config(variant: str = ""):
    if variant:
        raise unknown_variant(variant, ())
    config = language_model_config()
    corpus = shared_data_dir() / "multi30k"
    config.data.train_files = (str(corpus / "train.en.gz"),)
    config.data.eval_files = (str(corpus / "val.en.gz"),)
    config.data.test_files = (str(corpus / "test_2016_flickr.en.gz"),)
    config.data.prepared_dir = "runs/lm/multi30k_en_char_data"
    config.model.units = 512
    config.batch_size = 64
    config.num_train_steps = 6000
    config.decay_steps = 6000
    config.warmup_steps = 200
    config.learning_rate = 2e-3
    config.max_train_minutes = 20.0
    config.eval_every = 1000
    config.checkpoint_every = 500
    config.log_every = 100
    return finish(config)
