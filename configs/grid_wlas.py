"""GRID speaker s1, Watch, Listen, Attend and Spell: the grid_lipnet recipe's video stream plus
a log-mel audio stream, one encoder and one attention each, modality dropout, babble noise.

    lipseq prepare --config=configs/grid_wlas.py  # -> runs/grid/data_gray80_audio
    lipseq train --config=configs/grid_wlas.py --workdir=runs/grid/wlas

The export reads lips only, sound only or both: `<modality>_<mode>` signatures. "tiny" serves
the tests. "from_video" is the two-stage curriculum: the video stream starts from the shipped
video-only model (models/releases/grid_s1, itself an hour of training) and half of the
examples lose a stream, so the fresh audio stream and decoder learn to lean on the lips too:

    lipseq train --config=configs/grid_wlas.py:from_video --workdir=runs/grid/wlas_from_video
"""

from configs import grid_lipnet
from configs.common import finish, unknown_variant
from configs.lipreading_common import audio_visual

VARIANTS = ("tiny", "from_video")


def get_config(variant: str = ""):
    if variant and variant not in VARIANTS:
        raise unknown_variant(variant, VARIANTS)
    config = grid_lipnet.get_config("tiny" if variant == "tiny" else "")
    config.unlock()
    # A third of the examples lose one stream: the same weights read either alone.
    audio_visual(config, stream_dropout=0.3)
    config.data.prepared_dir = "runs/grid/data_gray80_audio"
    # A quarter of the examples keep clean sound: trained on noise alone, the sound read
    # clean clips no better than at 10 dB babble (2.95 against 2.53 WER, README).
    config.data.noise_fraction = 0.75
    # Joint decoding of both streams: the audio's CTC head 0.7 of the CTC weight, the video's
    # 0.3, the lowest mean validation WER over clean..-5 dB of 0.5 / 0.7 / 0.85 / 1.0
    # (bench/results/grid_wlas_ctc_head_weights_validation.json).
    config.decode.ctc_head_weights.audio = 0.7
    config.decode.ctc_head_weights.video = 0.3
    if variant == "from_video":
        config.init_from, config.init_stream = "grid_s1", "video"
        config.model.stream_dropout = 0.5
    if variant == "tiny":
        config.model.audio_filters, config.model.audio_features = 4, 16
    return finish(config)
