"""Multi30k en->de with LSTM cells and Bahdanau (additive) attention."""

from configs import multi30k_gru_attention


def get_config(variant: str = ""):
    config = multi30k_gru_attention.get_config(variant)
    config.model.encoder_cell = "lstm"
    config.model.decoder_cell = "lstm"
    config.model.attention = "bahdanau"
    return config
