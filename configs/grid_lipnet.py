"""GRID speaker s1, LipNet-style 3D CNN front-end, joint CTC/attention (see README results)."""

from configs.lipreading_common import lipreading_config


def get_config():
    config = lipreading_config()
    config.data.prepared_dir = "runs/grid/data"
    config.num_train_steps = 3000
    config.decay_steps = 3000
    config.warmup_steps = 200
    config.learning_rate = 1e-3
    config.max_train_minutes = 60.0
    config.eval_every = 250
    config.checkpoint_every = 250
    config.log_every = 25
    config.decode.grammar = "grid"
    return config
