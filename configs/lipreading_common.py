"""Defaults shared by lip-reading experiments; they reuse the translation config's keys."""

import ml_collections

from configs.common import translation_config


def lipreading_config() -> ml_collections.ConfigDict:
    """A complete lip-reading config: video front-end, bidirectional GRU, joint CTC/attention."""
    config = translation_config()
    config.task = "lipreading"
    data = config.data
    data.train_split, data.eval_split, data.test_split = "train", "validation", "test"
    data.crop_size = ()  # () keeps the stored crop; (88, 88) for the gray96 preset
    data.flip = True
    data.brightness = 0.1
    data.contrast = 0.1
    data.time_masks = 1
    data.max_time_mask = 6
    data.bucket_boundaries = (50, 70, 90, 110)
    data.shuffle_buffer = 256
    data.curriculum_word_epochs = 0  # first N epochs train on single aligned words
    model = config.model
    model.frontend = "lipnet"
    model.frame_shape = (50, 100, 3)  # replaced by the prepared data's shape at build time
    model.lipnet_filters = (32, 64, 96)
    model.lipnet_kernels = ()  # one (time, height, width) per block; () = 3x5x5 for all
    model.frontend_dropout = 0.1
    model.embedding_dim = 64
    model.encoder_units = 256
    model.encoder_layers = 2
    model.decoder_units = 256
    model.attention = "location"
    model.ctc_weight = 0.5
    config.batch_size = 16
    config.label_smoothing = 0.1
    config.eval_max_examples = 200
    config.decode.beam_size = 8
    config.decode.length_penalty = 0.0
    config.decode.max_length = 64
    config.decode.ctc_weight = 0.3  # weight of CTC prefix scores in joint decoding
    config.decode.grammar = ""  # "grid": only sentences of GRID's six word slots
    return config
