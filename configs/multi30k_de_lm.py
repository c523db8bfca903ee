"""A subword language model of German image captions (Multi30k's German side), over the
English->German model's own target SentencePiece pieces: shallow fusion in translation.

    lipseq prepare --config=configs/multi30k_gru_attention.py   # makes the target model
    lipseq prepare --config=configs/multi30k_de_lm.py
    lipseq train --config=configs/multi30k_de_lm.py --workdir=runs/lm/multi30k_de
    lipseq export --workdir=runs/multi30k/train --language_model=runs/lm/multi30k_de ...
"""

from configs.common import finish, language_model_config, unknown_variant
from data_prep.paths import shared_data_dir


def get_config(variant: str = ""):
    if variant:
        raise unknown_variant(variant, ())
    config = language_model_config()
    corpus = shared_data_dir() / "multi30k"
    config.data.train_files = (str(corpus / "train.de.gz"),)
    config.data.eval_files = (str(corpus / "val.de.gz"),)
    config.data.test_files = (str(corpus / "test_2016_flickr.de.gz"),)
    config.data.vocabulary = "runs/multi30k/data/spm_target.model"
    config.data.prepared_dir = "runs/lm/multi30k_de_data"
    config.model.embedding_dim = 256
    config.model.units = 512
    config.model.dropout = 0.3
    config.batch_size = 64
    config.num_train_steps = 6000
    config.decay_steps = 6000
    config.warmup_steps = 200
    config.learning_rate = 2e-3
    config.max_train_minutes = 15.0
    config.eval_every = 500
    config.checkpoint_every = 500
    config.log_every = 100
    return finish(config)
