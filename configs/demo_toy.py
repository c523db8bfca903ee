"""The embedded toy language pair used by `make demo` and the tests."""

from configs.common import translation_config


def get_config():
    config = translation_config()
    config.data.input_dir = "runs/demo/raw"
    config.data.prepared_dir = "runs/demo/data"
    config.data.source_lang = "src"
    config.data.target_lang = "tgt"
    config.data.vocab_size = 1000
    config.data.num_shards = 2
    config.model.embedding_dim = 128
    config.model.encoder_units = 128
    config.model.encoder_layers = 1
    config.model.decoder_units = 256
    config.model.dropout = 0.1
    config.batch_size = 64
    config.num_train_steps = 2500
    config.learning_rate = 2e-3
    config.warmup_steps = 200
    config.decay_steps = 2500
    config.eval_every = 500
    config.eval_max_examples = 200
    config.checkpoint_every = 500
    return config
