"""GRID speaker s1, Watch, Listen, Attend and Spell: the grid_lipnet recipe's video stream plus
a log-mel audio stream, one encoder and one attention each, modality dropout, babble noise.

    lipseq prepare --config=configs/grid_wlas.py  # -> runs/grid/data_gray80_audio
    lipseq train --config=configs/grid_wlas.py --workdir=runs/grid/wlas

The export reads lips only, sound only or both: `<modality>_<mode>` signatures. "tiny" serves
the tests. The curriculum in two stages inside the video recipe's hour: "lips_half_hour" is
the video-only recipe for 30 minutes on the same records, and
"both_half_hour" starts the video stream from it (`init_from`, its best checkpoint) and
trains both streams for the other 30 minutes, half of the examples losing a stream so the
fresh audio stream and the decoder learn to lean on the lips too:

    lipseq train --config=configs/grid_wlas.py:lips_half_hour --workdir=runs/grid/wlas_lips
    lipseq train --config=configs/grid_wlas.py:both_half_hour --workdir=runs/grid/wlas \
        --config.init_from=runs/grid/wlas_lips

"from_video" is the second stage from the shipped video-only model instead
(models/releases/grid_s1, itself an hour of training).
"""

from configs import grid_lipnet
from configs.common import finish, unknown_variant
from configs.lipreading_common import audio_visual

VARIANTS = ("tiny", "from_video", "lips_half_hour", "both_half_hour")
PREPARED_DIR = "runs/grid/data_gray80_audio"


def get_config(variant: str = ""):
    if variant and variant not in VARIANTS:
        raise unknown_variant(variant, VARIANTS)
    config = grid_lipnet.get_config("tiny" if variant == "tiny" else "")
    config.unlock()
    if variant == "lips_half_hour":
        config.data.prepared_dir = PREPARED_DIR
        config.max_train_minutes = 30.0
        return finish(config)
    # A third of the examples lose one stream: the same weights read either alone.
    audio_visual(config, stream_dropout=0.3)
    # The multi-stream model has no guidance term and no frame-label head
    # (models/multistream.py), so the video recipe's are not carried over as if they applied.
    config.model.guided_attention_weight = 0.0
    config.model.frame_label_weight = 0.0
    config.data.prepared_dir = PREPARED_DIR
    # A quarter of the examples keep clean sound: trained on noise alone, the sound read
    # clean clips no better than at 10 dB babble (docs/results/audio_visual.md, History).
    config.data.noise_fraction = 0.75
    # Joint decoding of both streams: the audio's CTC head 0.7 of the CTC weight, the video's
    # 0.3, the lowest mean validation WER over clean..-5 dB of 0.5 / 0.7 / 0.85 / 1.0
    # (bench/results/grid_wlas_ctc_head_weights_validation.json).
    config.decode.ctc_head_weights.audio = 0.7
    config.decode.ctc_head_weights.video = 0.3
    # The export serves joint decoding of both streams by default (the video recipe's
    # attention default would leave both CTC heads out); docs/results/audio_visual.md.
    config.decode.serving_default = "joint"
    if variant in ("from_video", "both_half_hour"):
        config.init_stream = "video"
        config.model.stream_dropout = 0.5
    if variant == "from_video":
        config.init_from = "grid_s1"
    if variant == "both_half_hour":
        config.init_from = "runs/grid/wlas_lips"
        config.max_train_minutes = 30.0
    if variant == "tiny":
        config.model.audio_filters, config.model.audio_features = 4, 16
    return finish(config)
