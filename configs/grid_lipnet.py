"""GRID speaker s1, LipNet-style 3D CNN front-end, CTC + word-guided attention.

    lipseq prepare --config=configs/grid_lipnet.py  # ../shared/data/grid -> runs/grid/data_gray80
    lipseq train --config=configs/grid_lipnet.py --workdir=runs/grid/train

The whole corpus (34 speakers, `s<N>/<id>.mpg` with `align/` or `alignments/s<N>/`): add
`--config.data.input_dir=<GRID root>` to both commands, and `--config.data.split=unseen`
(speakers 1, 2, 20, 22 held out, as LipNet) or `overlapped` (255 sentences of each speaker
held out); the default split, "sentence", hashes sentence ids whoever speaks them.

Variants for the learning-efficiency study (docs/results/grid_history.md): "short_budget"
always grows the windows' reach over the first 30 epochs (`make bench-quality`'s half hour on
one core), where the default does so only for runs of fewer than 100 epochs; "rgb100" is the
earlier recipe (100x50 RGB crops, 2 x bi-GRU 256); "tiny" serves the tests. Results:
docs/results/grid.md.
"""

from configs.common import finish, unknown_variant
from configs.lipreading_common import lipreading_config, tiny
from data_prep.paths import shared_data_dir

VARIANTS = ("short_budget", "rgb100", "tiny")


def get_config(variant: str = ""):
    config = lipreading_config()
    config.data.input_dir = str(shared_data_dir() / "grid")
    config.data.dataset = "grid"
    config.data.workers = 2
    # Gray 80x40 crops and a 2 x bi-GRU 192 encoder: more clips per second than 100x50 RGB
    # with 2 x 256 on 2 CPU cores, so the hour sees more epochs (bench/results/lipreading.json;
    # docs/results/grid_history.md, learning efficiency, has what each part bought).
    config.data.preset = "gray80"
    config.data.prepared_dir = "runs/grid/data_gray80"
    config.model.encoder_units = 192
    # Random 72x36 windows of the 80x40 crops in training (the centre one at inference, inside
    # the export): a shift of up to 4 pixels each way is augmentation the model lacked, and
    # the front-end sees 0.81x the pixels; the hour read better with them
    # (docs/results/grid_history.md, learning efficiency).
    config.data.crop_size = (36, 72)
    # How far the windows reach follows the epochs the run will last, measured after its
    # second (pipelines/training/budget_plan.py). A long run (the hour on an AVX-512 host)
    # reads better with full reach from its third epoch than with the reach grown over 30
    # epochs; a short one (the hour on an AVX2-only host) barely learns its first clips with
    # full reach and learns with the ramp; 100 epochs lies between the two
    # (docs/results/grid_history.md; bench/results/grid_avx2_host_short_budget_hour.json).
    config.data.crop_jitter_epochs = 30
    config.data.crop_jitter_ramp_below_epochs = 100
    # Filters halved from LipNet's 32/64/96 and 3x3 kernels after the first block: a cheaper
    # front-end, so the 60-minute CPU budget sees more epochs (docs/results/speed.md).
    config.model.lipnet_filters = (16, 32, 48)
    config.model.lipnet_kernels = ((3, 5, 5), (3, 3, 3), (3, 3, 3))
    # The hour, not a step count, sets the schedule: warm-up and cosine decay follow the
    # elapsed fraction of max_train_minutes on any host slower than 10,000 steps an hour.
    config.num_train_steps = 10000
    config.decay_steps = 10000
    config.warmup_steps = 200
    config.learning_rate = 2e-3
    config.max_train_minutes = 60.0
    config.eval_every = 400
    config.checkpoint_every = 400
    config.log_every = 25
    config.decode.grammar = "grid"
    # Each letter's attention kept on the frames where its word is spoken (GRID's word
    # timings; models/losses.py: word_window_penalty): it read better than runs without it
    # and than the diagonal over the speech span, its attention nearly all in the word
    # (bench/results/grid_words_hour.json, guided_attention_words_ab.json).
    config.model.guided_attention_weight = 1.0
    config.model.guided_attention_prior = "words"
    # Attention alone, not joint: the CTC head reads several times the attention decoder's
    # errors, and every CTC weight tried lost on validation (docs/results/grid.md, the release).
    config.decode.serving_default = "attention"
    # Each encoder frame inside a spoken word also names that word's letters (GRID's word
    # timings; models/losses.py: word_frame_cross_entropy): side by side on one core each it
    # learned far faster than without (bench/results/grid_frame_labels_ab.json).
    config.model.frame_label_weight = 0.5
    if variant == "short_budget":
        # The ramp whatever the epoch count, for runs known to be short (the bench's half hour
        # on one core), where full reach from the first step barely learns
        # (bench/results/quality_avx512_host_before_frame_labels.json).
        config.data.crop_jitter_ramp_below_epochs = 0
    elif variant == "rgb100":
        config.data.preset = "lipnet"
        config.data.prepared_dir = "runs/grid/data"
        config.model.encoder_units = 256
        config.data.crop_size = ()
    elif variant == "tiny":
        tiny(config)
        config.data.crop_size = ()
    elif variant:
        raise unknown_variant(variant, VARIANTS)
    return finish(config)
