"""A character language model of GRID sentences, from text alone: sentences drawn from the
grammar's word lists (no video, no test transcript), for shallow fusion with lip reading.

    lipseq prepare --config=configs/grid_char_lm.py
    lipseq train --config=configs/grid_char_lm.py --workdir=runs/lm/grid_char

"tiny" serves the tests.
"""

from configs.common import finish, language_model_config, unknown_variant


def get_config(variant: str = ""):
    config = language_model_config()
    config.data.source = "grid"
    config.data.grid_sentences = 22000
    config.data.prepared_dir = "runs/lm/grid_char_data"
    config.model.units = 256
    config.num_train_steps = 1500
    config.decay_steps = 1500
    config.warmup_steps = 100
    config.learning_rate = 3e-3
    config.max_train_minutes = 10.0
    config.eval_every = 500
    config.checkpoint_every = 500
    config.log_every = 100
    if variant == "tiny":
        config.data.grid_sentences = 600
        config.data.heldout_lines = 100
        config.model.embedding_dim, config.model.units = 16, 32
        config.num_train_steps = config.decay_steps = 40
        config.warmup_steps = 5
        config.eval_every = config.checkpoint_every = 20
        config.log_every = 10
        config.max_train_minutes = 0.0
    elif variant:
        raise unknown_variant(variant, ("tiny",))
    return finish(config)
