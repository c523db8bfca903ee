"""Multi30k en->de: bidirectional GRU encoder, Luong attention decoder with input feeding."""

from configs.common import translation_config
from data_prep.paths import shared_data_dir


def get_config():
    config = translation_config()
    config.data.input_dir = str(shared_data_dir() / "multi30k")
    config.data.prepared_dir = "runs/multi30k/data"
    config.data.source_lang = "en"
    config.data.target_lang = "de"
    config.data.test_split = "test_2016_flickr"
    config.data.vocab_size = 6000
    return config
