"""GRID speaker s1, LipNet-style 3D CNN front-end, joint CTC/attention (see README results)."""

from configs.lipreading_common import lipreading_config


def get_config():
    config = lipreading_config()
    config.data.prepared_dir = "runs/grid/data"
    # Filters halved from LipNet's 32/64/96: 2x the epochs in the 60-minute CPU budget.
    config.model.lipnet_filters = (16, 32, 48)
    config.num_train_steps = 3600
    config.decay_steps = 3600
    config.warmup_steps = 200
    config.learning_rate = 1.5e-3
    config.max_train_minutes = 60.0
    config.eval_every = 300
    config.checkpoint_every = 300
    config.log_every = 25
    config.decode.grammar = "grid"
    return config
