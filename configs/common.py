"""Keys every experiment shares, and the translation defaults built on them.

An experiment file (`configs/<name>.py`) defines `get_config(variant="")` returning a locked
ConfigDict: preparation, data, model, training and decoding in one place, so
`lipseq prepare --config=X` prepares exactly what `lipseq train --config=X` trains on and the
export stores what both used. `variant="tiny"` gives the few-second version the tests run.
Keys that only one task reads live in that task's defaults (`translation_config` here,
`configs/lipreading_common.py: lipreading_config`).
"""

import ml_collections


def base_config(task: str) -> ml_collections.ConfigDict:
    """The keys of every task: data location and splits, encoder/decoder, training, decoding."""
    config = ml_collections.ConfigDict()
    config.task = task  # the registry name in pipelines/tasks
    config.seed = 42

    # Data: where preparation reads and writes, and the input pipeline.
    config.data = ml_collections.ConfigDict()
    config.data.input_dir = ""  # the raw corpus
    config.data.prepared_dir = ""  # where prepare writes shards + manifest.json
    config.data.train_split = "train"
    config.data.eval_split = "val"
    config.data.test_split = "test"
    config.data.shuffle_buffer = 20000
    config.data.bucket_boundaries = (8, 12, 16, 20, 24, 32, 48, 64, 100)

    # Model: front-end -> bidirectional encoder -> attention decoder (+ CTC head).
    config.model = ml_collections.ConfigDict()
    config.model.frontend = "embedding"
    config.model.embedding_dim = 256
    config.model.encoder_cell = "gru"  # gru | lstm
    config.model.encoder_units = 256  # per direction
    config.model.encoder_layers = 2
    config.model.encoder_residual = True
    config.model.dropout = 0.2
    config.model.decoder_cell = "gru"
    config.model.decoder_units = 512
    config.model.attention = "luong"  # luong | bahdanau | location
    config.model.attention_units = 256  # bahdanau and location only
    config.model.input_feeding = True
    # > 0: train the decoder's softmax on the targets plus this many log-uniformly sampled
    # classes (large word vocabularies); evaluation and search use the full softmax.
    config.model.sampled_softmax = 0
    # The output layer reuses the target embedding matrix (through a linear map from the
    # decoder's width when embedding_dim differs): fewer parameters, shared word statistics.
    config.model.tie_embeddings = False
    config.model.ctc_weight = 0.0  # lambda in lambda * CTC + (1 - lambda) * attention loss
    # Weight of a loss on attention mass off the diagonal (0: off); width: its tolerance as a
    # fraction of the sequence (models/losses.py: guided_attention_penalty).
    config.model.guided_attention_weight = 0.0
    config.model.guided_attention_width = 0.2
    # "diagonal", or "words": each label's attention kept on the frames where its word is
    # spoken (corpora with word timings; models/losses.py: word_window_penalty).
    config.model.guided_attention_prior = "diagonal"
    # Weight of a training-only loss that has each encoder frame inside a timed word name
    # that word's letters (corpora with word timings; models/losses.py:
    # word_frame_cross_entropy); 0: off.
    config.model.frame_label_weight = 0.0

    # Training (lipseq train).
    config.batch_size = 64
    config.num_train_steps = 20000
    config.max_train_minutes = 0.0  # 0: no wall-clock limit
    config.learning_rate = 1e-3
    config.warmup_steps = 500
    config.decay_steps = 20000  # cosine decay after warm-up, down to min_learning_rate
    config.min_learning_rate = 1e-5
    config.clip_norm = 5.0
    # Decoupled weight decay (AdamW) on kernels and embeddings; 0: plain Adam. Off: 0.05 read
    # GRID worse over the hour than the runs without it
    # (bench/results/grid_regularisation_hour.json).
    config.weight_decay = 0.0
    config.label_smoothing = 0.1
    config.log_every = 50
    config.checkpoint_every = 500
    config.keep_checkpoints = 3
    config.eval_every = 1000
    config.eval_max_examples = 500  # validation examples decoded for the task's metric
    config.early_stopping_patience = 0  # evaluations without improvement; 0 disables
    config.nan_policy = "stop"  # stop | rollback (to the last checkpoint, with a lower LR)
    config.nan_rollback_lr_factor = 0.5
    config.max_nan_rollbacks = 3
    # "" float32 | float16 (loss-scaled) | bfloat16 | auto: pipelines/training/precision.py
    config.mixed_precision = ""
    config.deterministic = False  # tf.config.experimental.enable_op_determinism()
    config.record_batch_ids = False  # append each step's example ids to batch_ids.jsonl
    # Fine-tuning / warm start: a training workdir or an export with the same model config.
    config.init_from = ""
    config.freeze_frontend_steps = 0  # hold the front-end still for the first N steps
    # With init_from a single-stream model: the stream of a multi-stream model it initialises.
    config.init_stream = ""

    # Decoding.
    config.decode = ml_collections.ConfigDict()
    config.decode.beam_size = 5
    config.decode.length_penalty = 0.6  # alpha in log_prob / length**alpha
    config.decode.max_length = 150
    # Shallow fusion with a language model given to export (--language_model): the `<mode>_lm`
    # signatures add lm_weight * log p_LM(label) + lm_length_bonus per label; both are also
    # inputs of those signatures, so a request may set its own.
    config.decode.lm_weight = 0.3
    config.decode.lm_length_bonus = 0.0
    return config


def translation_config() -> ml_collections.ConfigDict:
    """A complete translation config: text preparation, token front-end, subword decoding."""
    config = base_config("translation")
    data = config.data
    # Preparation (lipseq prepare): line-aligned {split}.{lang}[.gz] files under input_dir,
    # or a TFDS translate dataset on disk.
    data.source_lang = "en"
    data.target_lang = "de"
    data.tfds_name = ""  # e.g. "wmt14_translate/de-en"; empty: read files from input_dir
    data.tfds_data_dir = ""
    # subwords: SentencePiece; words: whole words and punctuation, <unk> for the rest (pair
    # it with model.sampled_softmax when the vocabulary is large)
    data.vocabulary = "subwords"
    data.vocab_size = 8000  # per side, or in total when joint_vocab
    data.word_min_count = 1  # words: tokens seen fewer times in training text become <unk>
    data.dictionary_size = 10  # words: target words per source word for candidate lists
    data.joint_vocab = False
    data.subword_model = "unigram"  # SentencePiece model_type: unigram | bpe
    data.character_coverage = 1.0
    data.max_length = 100  # subword tokens per side; longer pairs are dropped at prep
    data.num_shards = 4
    # Batching.
    config.batch_by_tokens = False
    config.max_tokens = 2048  # target tokens per batch when batch_by_tokens is True
    config.decode.max_length_ratio = 2.0  # max target tokens = ratio * source tokens + 10
    # Candidate lists (word vocabularies with a dictionary): the most frequent target words
    # plus each source word's dictionary entries; the beam_candidates signature uses them.
    config.decode.candidate_frequent = 2000
    config.decode.replace_unknown = True  # words: an output <unk> copies the attended source word
    return config


def language_model_config() -> ml_collections.ConfigDict:
    """A complete language-model config: text preparation and the decoder stack alone."""
    config = base_config("language_model")
    data = config.data
    # Preparation (lipseq prepare; data_prep/language_model.py).
    data.source = "files"  # files | grid (sentences of the GRID grammar)
    data.train_files = ()  # globs of one-sentence-per-line text (plain or .gz)
    data.eval_files = ()  # held-out text; empty: data.heldout_lines cut from the training text
    data.test_files = ()
    data.heldout_lines = 1000
    data.grid_sentences = 0  # source grid: sentences to draw (val and test included)
    data.vocabulary = "characters"  # characters, or the path of a SentencePiece model
    data.max_length = 400  # tokens; longer lines are dropped
    config.model = ml_collections.ConfigDict()
    config.model.embedding_dim = 64
    config.model.units = 512
    config.model.num_layers = 1
    config.model.cell = "lstm"  # lstm | gru
    config.model.dropout = 0.1
    config.model.tie_embeddings = False  # needs embedding_dim == units
    config.batch_size = 64
    config.eval_max_examples = 0  # validation perplexity on the whole held-out split
    return config


def finish(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Locks an experiment config: an unknown key is an error, in code and on the command line."""
    config.lock()
    return config


def unknown_variant(variant: str, known: tuple[str, ...]) -> ValueError:
    """The error for a `get_config(variant)` call with an unknown variant."""
    return ValueError(f"unknown config variant {variant!r}; known: {', '.join(known)}")
