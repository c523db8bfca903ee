"""Defaults of lip-reading experiments: video preparation, LipNet front-end, joint CTC/attention."""

import ml_collections

from configs.common import base_config


def lipreading_config() -> ml_collections.ConfigDict:
    """A complete lip-reading config; experiment files override what they change."""
    config = base_config("lipreading")
    data = config.data
    data.train_split, data.eval_split, data.test_split = "train", "validation", "test"
    # Preparation (lipseq prepare): raw videos -> mouth crops. See data_prep/lipreading.py.
    data.dataset = "grid"  # corpus layout of input_dir: grid | lrs | manifest (CSV/JSONL file)
    # crop preset: lipnet 100x50 RGB | gray80 80x40 | gray96 96x96 | small 48x24 gray
    data.preset = "lipnet"
    # face detector: haar | facetrack (face-track corpora such as LRS2/3) | mediapipe | dlib
    data.detector = "haar"
    data.detect_every = 10  # run face detection every k frames, track in between
    data.target_fps = 25.0  # resample every video to this rate
    data.max_gap_frames = 25  # skip a clip whose face is lost for longer
    data.max_corrupt_fraction = 0.2  # skip a clip with more damaged frames
    data.min_frames = 5
    data.max_frames = 0  # 0: no limit
    data.clips_per_shard = 64
    data.workers = 1  # preparation worker processes
    data.max_clips = 0  # only the first N clips by id (0: all)
    data.strict = False  # stop at the first bad clip instead of skipping it
    data.keep_out_of_set = False  # drop unknown transcript characters instead of the clip
    data.audio = False  # also store each clip's audio track (16 kHz mono), for audio tasks
    # Which clips train/validate/test: "sentence" (a hash of the sentence id, 80/10/10, blind
    # to speakers: the rule the shipped s1 figures were made with), or LipNet's "unseen"
    # (speakers 1, 2, 20, 22 held out) and "overlapped" (255 of each speaker's 1000 held out)
    # for a many-speaker corpus. Stored with the prepared data: it decides what a split holds.
    data.split = "sentence"
    # Input pipeline and augmentation.
    data.crop_size = ()  # () keeps the stored crop; (88, 88) for the gray96 preset
    data.crop_jitter_epochs = 0  # training windows reach from the centre to anywhere over N epochs
    # >0: that ramp only for runs projected, after their second epoch, to last fewer epochs.
    data.crop_jitter_ramp_below_epochs = 0
    data.flip = True
    data.brightness = 0.1
    data.contrast = 0.1
    data.time_masks = 1
    data.max_time_mask = 6
    # Each training frame dropped, and as often doubled, with this chance. Off: 0.05 read GRID
    # worse over the hour than the runs without it (bench/results/grid_regularisation_hour.json).
    data.frame_jitter = 0.0
    data.bucket_boundaries = (50, 70, 90, 110)
    data.shuffle_buffer = 256
    data.curriculum_word_epochs = 0  # first N epochs train on single aligned words
    model = config.model
    model.frontend = "lipnet"  # lipnet | resnet
    model.frame_shape = (50, 100, 3)  # replaced by the prepared data's shape at build time
    model.lipnet_filters = (32, 64, 96)
    model.lipnet_kernels = ()  # one (time, height, width) per block; () = 3x5x5 for all
    model.lipnet_pool_first = False  # pool before batch norm and ReLU (a quarter of the work)
    model.frontend_dropout = 0.1
    model.resnet_stem_filters = 32
    model.resnet_stage_filters = (32, 64, 128, 256)
    model.resnet_blocks_per_stage = 1
    # log_mel front-end (raw 16 kHz waveform in): mel bins, filters of its two stride-2
    # convolutions (100 Hz -> 25 Hz) and the feature size it hands the encoder.
    model.audio_mel_bins = 80
    model.audio_filters = 64
    model.audio_features = 256
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
    # The export's serving_default (and so transcribe's and the service's default mode):
    # "" is joint CTC/attention when the model has a CTC head, attention otherwise.
    config.decode.serving_default = ""
    # The mode validation decodes (best checkpoint, early stopping): "" is greedy CTC when the
    # model has a CTC head (cheap, and it tracks training), attention otherwise. Enrolment
    # validates with the mode it scores, since greedy CTC stays at chance on a new face longer.
    config.decode.validation_mode = ""
    return config


def tiny(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrinks a lip-reading config to a model the tests train in seconds."""
    config.model.lipnet_filters = (4, 8, 8)
    config.model.lipnet_kernels = ()
    config.model.encoder_units = 16
    config.model.encoder_layers = 1
    config.model.decoder_units = 32
    config.model.embedding_dim = 16
    config.model.resnet_stem_filters = 8
    config.model.resnet_stage_filters = (8, 8, 16, 16)
    config.model.resnet_blocks_per_stage = 1
    config.batch_size = 4
    config.num_train_steps = 12
    config.max_train_minutes = 0.0
    config.warmup_steps = 2
    config.decay_steps = 50
    config.log_every = 4
    config.checkpoint_every = 6
    config.eval_every = 12
    config.eval_max_examples = 4
    config.decode.beam_size = 3
    config.decode.max_length = 40
    return config


def audio_visual(config: ml_collections.ConfigDict, stream_dropout: float):
    """Makes a lip-reading config Watch, Listen, Attend and Spell: the same video stream plus
    a log-mel audio stream, examples losing a stream at `stream_dropout`, and babble of other
    training clips mixed into the sound at -5 to 20 dB (evaluation adds noise only when
    asked)."""
    config.task = "audio_visual"
    config.data.audio = True
    config.data.noise = "babble"
    config.data.snr_range_db = (-5.0, 20.0)
    config.data.noise_fraction = 1.0  # share of training examples that get noise
    config.model.streams = ml_collections.ConfigDict(
        {"video": {"frontend": "lipnet"}, "audio": {"frontend": "log_mel"}}
    )
    # The stream whose CTC head the CTC searches of both streams read: far the stronger when
    # clean.
    config.model.primary_stream = "audio"
    config.model.stream_dropout = stream_dropout
    # Joint decoding of both streams scores with every stream's CTC head ("all", each with an
    # even share of the CTC weight) rather than the primary's alone ("primary"): in loud babble
    # the sound's head alone misleads the search, and with every head both streams read below
    # the lips alone (bench/results/grid_wlas_from_video_even_ctc_eval_snr.json against
    # grid_wlas_from_video_audio_ctc_eval_snr.json).
    config.decode.ctc_heads = "all"
    # Each stream's share of that CTC weight (normalised over the streams read): even here.
    config.decode.ctc_head_weights = ml_collections.ConfigDict({"video": 1.0, "audio": 1.0})
    return config
