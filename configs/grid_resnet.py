"""GRID s1 with the Conv3D-stem + per-frame ResNet front-end on 88x88 grayscale crops."""

from configs.grid_lipnet import get_config as lipnet_config


def get_config():
    config = lipnet_config()
    config.data.prepared_dir = "runs/grid/data_gray96"
    config.data.crop_size = (88, 88)
    config.model.frontend = "resnet"
    config.model.resnet_stem_filters = 32
    config.model.resnet_stage_filters = (32, 64, 128, 256)
    config.model.resnet_blocks_per_stage = 1
    return config
