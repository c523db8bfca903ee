"""Synthetic talking faces used by `make demo`: a small LipNet on 48x24 gray crops.

"audio_visual" adds the faces' generated sound track as a second stream (Watch, Listen, Attend
and Spell, as configs/grid_wlas.py on GRID); "tiny" serves the tests.
"""

from configs.common import finish, unknown_variant
from configs.lipreading_common import audio_visual, lipreading_config, tiny

# Three words per GRID slot (four for letters and adverbs) whose mouth-shape sequences differ,
# so the rendered faces carry the text. 1,296 possible sentences; the demo renders DEMO_CLIPS.
DEMO_VOCABULARY = tuple(
    "bin lay place blue green white at by with a f o b one two five again now please soon".split()
)
DEMO_CLIPS = 360
# `lipseq demo --quick` (CI's learning check): two to four words per slot (192 sentences), small
# frames at half the frame rate, so CI's learning check needs only a few minutes' training.
QUICK_VOCABULARY = tuple("bin lay blue green at by a f o b one two five now please".split())
QUICK_CLIPS = 160
QUICK_FRAME_SIZE = (128, 104)
QUICK_FPS = 12.5
VARIANTS = ("tiny", "audio_visual", "quick")


def get_config(variant: str = ""):
    config = lipreading_config()
    config.data.input_dir = "runs/demo/video_raw"
    config.data.prepared_dir = "runs/demo/video_data"
    config.data.dataset = "grid"
    config.data.preset = "small"
    config.data.clips_per_shard = 32
    config.data.workers = 2
    config.data.flip = False
    config.data.time_masks = 0
    config.data.bucket_boundaries = (70, 90)
    config.model.lipnet_filters = (16, 24, 32)
    config.model.frontend_dropout = 0.0
    config.model.embedding_dim = 32
    config.model.encoder_units = 96
    config.model.encoder_layers = 1
    config.model.decoder_units = 128
    config.model.dropout = 0.1
    config.batch_size = 16
    config.num_train_steps = 600
    config.learning_rate = 3e-3
    config.warmup_steps = 50
    config.decay_steps = 600
    config.eval_every = 200
    config.checkpoint_every = 200
    config.eval_max_examples = 40
    config.log_every = 25
    config.decode.beam_size = 4
    config.decode.grammar = "grid"
    # Each letter's attention kept on the frames where its word is spoken, as the GRID recipe
    # (the rendered faces carry word timings): without it the demo's decoder read the clip's
    # ends (bench/results/demo_guided_words.json).
    config.model.guided_attention_weight = 1.0
    config.model.guided_attention_prior = "words"
    if variant == "tiny":
        tiny(config)
        config.data.workers = 1
    elif variant == "audio_visual":
        # The demo starts the video stream from its video model (pipelines/demo.py), so half
        # of the examples losing a stream keeps both readings in practice.
        audio_visual(config, stream_dropout=0.5)
        config.model.audio_filters, config.model.audio_features = 16, 64
        config.num_train_steps = config.decay_steps = 300
    elif variant == "quick":
        config.data.target_fps = QUICK_FPS
        config.data.bucket_boundaries = (30, 40)
        config.num_train_steps = config.decay_steps = 300
        config.warmup_steps = 20
        config.eval_every = 0
    elif variant:
        raise unknown_variant(variant, VARIANTS)
    return finish(config)
