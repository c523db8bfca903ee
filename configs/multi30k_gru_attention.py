"""Multi30k en->de: bidirectional GRU encoder, Luong attention decoder with input feeding.

Sized for the 45-minute budget (max_train_minutes, the learning rate annealed within it) on
a 2-core CPU; its speed and BLEU: bench/results/translation.json, docs/results/translation.md.
"""

from configs.common import finish, translation_config, unknown_variant
from data_prep.paths import shared_data_dir


def get_config(variant: str = ""):
    config = translation_config()
    config.data.input_dir = str(shared_data_dir() / "multi30k")
    config.data.prepared_dir = "runs/multi30k/data"
    config.data.source_lang = "en"
    config.data.target_lang = "de"
    config.data.test_split = "test_2016_flickr"
    config.data.vocab_size = 6000
    config.model.dropout = 0.3
    config.batch_size = 64
    config.num_train_steps = 6000
    config.decay_steps = 6000
    config.warmup_steps = 500
    config.learning_rate = 1.5e-3
    config.max_train_minutes = 45.0
    config.checkpoint_every = 500
    config.eval_every = 1000
    if variant == "small":
        # The real corpus with a model that learns visibly in a few minutes (integration test).
        config.data.vocab_size = 2000
        config.model.embedding_dim = 64
        config.model.encoder_units = 64
        config.model.encoder_layers = 1
        config.model.decoder_units = 128
        config.num_train_steps = 200
        config.warmup_steps = 50
        config.decay_steps = 400
        config.learning_rate = 3e-3
        config.log_every = 20
        config.eval_every = 200
        config.eval_max_examples = 50
        config.max_train_minutes = 0.0
    elif variant:
        raise unknown_variant(variant, ("small",))
    return finish(config)
