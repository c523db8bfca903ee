"""GRID s1 with the Conv3D-stem + per-frame ResNet front-end on 88x88 grayscale crops.

    lipseq prepare --config=configs/grid_resnet.py     # gray96 crops -> runs/grid/data_gray96
"""

from configs.grid_lipnet import get_config as lipnet_config


def get_config(variant: str = ""):
    config = lipnet_config(variant)
    config.data.prepared_dir = "runs/grid/data_gray96"
    config.data.preset = "gray96"
    config.data.crop_size = (88, 88)
    config.model.frontend = "resnet"
    if not variant:
        config.model.resnet_stem_filters = 32
        config.model.resnet_stage_filters = (32, 64, 128, 256)
        config.model.resnet_blocks_per_stage = 1
    return config
