"""GRID speaker s1, LipNet-style 3D CNN front-end, CTC + word-guided attention (README results).

    lipseq prepare --config=configs/grid_lipnet.py  # ../shared/data/grid -> runs/grid/data_gray80
    lipseq train --config=configs/grid_lipnet.py --workdir=runs/grid/train

Variants for the learning-efficiency study (BUILD.md): "short_budget" always grows the
windows' reach over the first 30 epochs (`make bench-quality`'s half hour on one core),
where the default does so only for runs of fewer than 100 epochs; "rgb100" is the earlier
recipe (100x50 RGB crops, 2 x bi-GRU 256); "tiny" serves the tests.
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
    # Gray 80x40 crops and a 2 x bi-GRU 192 encoder: 1.6x the clips per second of 100x50 RGB
    # with 2 x 256 on 2 CPU cores (bench/results/lipreading.json), so the hour sees 1.6x the
    # epochs; the study in BUILD.md has what each part bought.
    config.data.preset = "gray80"
    config.data.prepared_dir = "runs/grid/data_gray80"
    config.model.encoder_units = 192
    # Random 72x36 windows of the 80x40 crops in training (the centre one at inference, inside
    # the export): a shift of up to 4 pixels each way is augmentation the model lacked, and
    # the front-end sees 0.81x the pixels. Validation greedy CTC WER 14.2 against 20.8 after
    # the same hour (BUILD.md, learning efficiency).
    config.data.crop_size = (36, 72)
    # How far the windows reach follows the epochs the run will last, measured after its
    # second (pipelines/training/budget_plan.py). An hour of ~150 epochs (AVX-512 hosts) takes
    # full reach from the third epoch: validation joint WER 5.68, against 10.23 with the
    # reach grown over 30 epochs. An hour of ~50 (an AVX2-only host) grows it over 30: with
    # full reach the first ~28,000 clips barely learn (test joint 67.51 at 37,860 clips),
    # with the ramp that host's hour read test attention 7.81 (BUILD.md, learning efficiency).
    config.data.crop_jitter_epochs = 30
    config.data.crop_jitter_ramp_below_epochs = 100
    # Filters halved from LipNet's 32/64/96 and 3x3 kernels after the first block: 2.4x the
    # epochs in the 60-minute CPU budget.
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
    # timings; models/losses.py: word_window_penalty). The hour with it read test attention
    # WER 5.49 (validation 3.98), attention 99.6 % in the word, against 6.96 and 12.66 (14 %)
    # for two runs without it; side by side for 45 minutes on one core, 5.70 against 8.44
    # for the diagonal over the speech span (BUILD.md; guided_attention_words_ab.json).
    config.model.guided_attention_weight = 1.0
    config.model.guided_attention_prior = "words"
    # Attention alone, not joint: the CTC head reads 3x the attention decoder's errors, and
    # every CTC weight tried lost on validation (0.1 / 0.2 / 0.3: 4.36 / 4.55 / 4.73 against
    # 3.98 for the hour's run).
    config.decode.serving_default = "attention"
    # Each encoder frame inside a spoken word also names that word's letters (GRID's word
    # timings; models/losses.py: word_frame_cross_entropy). Side by side for 50 minutes on
    # one core each (~20,000 clips): test attention WER 7.59 against 17.09, validation
    # greedy CTC 31.4 against 71.0 at 12,800 clips (BUILD.md, learning efficiency).
    config.model.frame_label_weight = 0.5
    if variant == "short_budget":
        # The ramp whatever the epoch count: 30 minutes on one core read test joint WER 30.59
        # with it, against 67.51 with full reach from the first step (quality.json).
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
