"""The embedded toy language pair used by `make demo` and the tests."""

from configs.common import finish, translation_config, unknown_variant


def get_config(variant: str = ""):
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
    if variant == "tiny":
        # A model and vocabulary the tests train in seconds on a few hundred pairs.
        config.data.vocab_size = 200
        config.model.embedding_dim = 16
        config.model.encoder_units = 16
        config.model.decoder_units = 32
        config.batch_size = 16
        config.num_train_steps = 12
        config.warmup_steps = 2
        config.decay_steps = 100
        config.log_every = 1
        config.checkpoint_every = 5
        config.eval_every = 0
    elif variant == "small":
        # Learns visibly in 60 steps on 2,000 pairs: the end-to-end translation tests.
        config.data.vocab_size = 300
        config.model.embedding_dim = 32
        config.model.encoder_units = 32
        config.model.decoder_units = 64
        config.batch_size = 32
        config.num_train_steps = 60
        config.warmup_steps = 10
        config.decay_steps = 200
        config.log_every = 10
        config.checkpoint_every = 30
        config.eval_every = 30
        config.eval_max_examples = 20
        config.decode.beam_size = 3
    elif variant:
        raise unknown_variant(variant, ("tiny", "small"))
    return finish(config)
