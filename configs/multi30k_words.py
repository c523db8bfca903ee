"""Multi30k en->de at word level: whole-word vocabularies with <unk> and sampled softmax.

The model is configs/multi30k_gru_attention.py's; only the output units differ. Every word
of the training text is in the vocabulary (about 10k English, 18k German tokens); training
scores 512 log-uniformly sampled words a step instead of all of them, and an <unk> in the
output is replaced by the source word the attention weighs most.
"""

from configs import multi30k_gru_attention
from configs.common import finish


def get_config(variant: str = ""):
    config = multi30k_gru_attention.get_config(variant)
    config.data.prepared_dir = "runs/multi30k_words/data"
    config.data.vocabulary = "words"
    config.data.vocab_size = 30000
    config.model.sampled_softmax = 512
    if variant == "small":
        config.data.vocab_size = 3000
        config.model.sampled_softmax = 128
    return finish(config)
