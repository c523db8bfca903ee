"""GRID speaker s1, LipNet-style 3D CNN front-end, joint CTC/attention (see README results).

    lipseq prepare --config=configs/grid_lipnet.py     # ../shared/data/grid -> runs/grid/data
    lipseq train --config=configs/grid_lipnet.py --workdir=runs/grid/train
"""

from configs.common import finish, unknown_variant
from configs.lipreading_common import lipreading_config, tiny
from data_prep.paths import shared_data_dir


def get_config(variant: str = ""):
    config = lipreading_config()
    config.data.input_dir = str(shared_data_dir() / "grid")
    config.data.prepared_dir = "runs/grid/data"
    config.data.dataset = "grid"
    config.data.preset = "lipnet"
    config.data.workers = 2
    # Filters halved from LipNet's 32/64/96 and 3x3 kernels after the first block: 2.4x the
    # epochs in the 60-minute CPU budget.
    config.model.lipnet_filters = (16, 32, 48)
    config.model.lipnet_kernels = ((3, 5, 5), (3, 3, 3), (3, 3, 3))
    # About what 2 CPU cores finish in 60 minutes, so the cosine schedule anneals fully.
    config.num_train_steps = 3400
    config.decay_steps = 3400
    config.warmup_steps = 200
    config.learning_rate = 2e-3
    config.max_train_minutes = 60.0
    config.eval_every = 300
    config.checkpoint_every = 300
    config.log_every = 25
    config.decode.grammar = "grid"
    if variant == "tiny":
        tiny(config)
    elif variant:
        raise unknown_variant(variant, ("tiny",))
    return finish(config)
