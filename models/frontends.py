"""Front-ends: turn raw inputs into feature sequences for the encoder.

Every front-end shares one contract so encoders and decoders never know the input type:
    features, lengths = frontend(inputs, lengths, training=...)
    features: float [B, T', D]; lengths: int32 [B] valid steps of features.
"""

import keras
import tensorflow as tf


class FrontEnd(keras.layers.Layer):
    """Base class for front-ends; subclasses implement `call(inputs, lengths, training)`."""

    @property
    def output_dim(self) -> int:
        raise NotImplementedError

    @property
    def batch_input_shape(self) -> tuple:
        """Input shape with unknown batch and time, e.g. (None, None) for token ids."""
        return (None, None)


def _time_mask(lengths, num_steps, dtype):
    return tf.cast(tf.sequence_mask(lengths, num_steps), dtype)


@keras.saving.register_keras_serializable("lipseq")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Keras batch normalisation over channels-last inputs of rank 4 or 5 whose training pass
    is TensorFlow's fused kernel: on a CPU it takes half the time of Keras' own moments-and-
    normalise ops (forward and backward; `bench/results/lipreading.json`), which Keras 3 no
    longer fuses. Same variables, statistics and inference pass, so checkpoints carry over.
    """

    def call(self, inputs, training=None, mask=None):
        fusable = (
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and self.scale
            and self.center
            and self.axis in (-1, len(inputs.shape) - 1)
            and len(inputs.shape) in (4, 5)
        )
        if not fusable:
            return super().call(inputs, training=training, mask=mask)
        shape = tf.shape(inputs)
        # The fused kernel is 4-D; [B, T, H, W, C] normalises over the same axes as [B*T, H, W, C].
        images = tf.reshape(inputs, tf.concat([[-1], shape[-3:]], axis=0))
        if images.dtype not in (tf.float16, tf.bfloat16, tf.float32):
            images = tf.cast(images, tf.float32)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            images,
            tf.cast(self.gamma, tf.float32),
            tf.cast(self.beta, tf.float32),
            epsilon=self.epsilon,
            is_training=True,
        )
        # The kernel hands back the unbiased batch variance; the moving average stores the
        # biased one, as Keras' own pass does.
        count = tf.cast(tf.size(images) // tf.shape(images)[-1], tf.float32)
        variance = variance * tf.maximum(count - 1.0, 1.0) / tf.maximum(count, 1.0)
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(
            self.moving_variance * momentum + variance * (1.0 - momentum)
        )
        return tf.cast(tf.reshape(outputs, shape), self.compute_dtype)


@keras.saving.register_keras_serializable("lipseq")
class LipNetFrontEnd(FrontEnd):
    """LipNet-style spatio-temporal CNN: frames [B, T, H, W, C] -> features [B, T, D].

    Conv3D blocks (3x5x5 kernels by default, `kernels` gives one per block) with spatial-only
    pooling, so every input frame keeps one output step. Padded frames are zeroed before every
    block, so a temporal kernel at the end of a clip sees the same zeros whether or not the
    batch is padded further.

    pool_first=True pools each convolution's output before batch norm and ReLU, so they (and
    the dropout) work on a quarter of the values; at inference the two orders agree wherever
    a channel's batch-norm scale is positive, but training normalises with the pooled values'
    statistics, so a model trained in one order is read in that order.
    """

    def __init__(
        self,
        frame_shape,
        filters=(32, 64, 96),
        dropout: float = 0.0,
        kernels=None,
        pool_first: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.frame_shape = tuple(frame_shape)
        self.pool_first = bool(pool_first)
        self.filters = tuple(filters)
        self.kernels = tuple(tuple(k) for k in kernels) if kernels else ((3, 5, 5),) * len(filters)
        if len(self.kernels) != len(self.filters) or any(len(k) != 3 for k in self.kernels):
            raise ValueError(
                f"LipNet kernels {self.kernels} must give one (time, height, width) per block "
                f"of filters {self.filters}"
            )
        for i, (width, kernel) in enumerate(zip(self.filters, self.kernels, strict=True)):
            conv = keras.layers.Conv3D(
                width,
                kernel,
                strides=(1, 2, 2) if i == 0 else (1, 1, 1),
                padding="same",
                use_bias=False,
                name=f"conv{i}",
            )
            norm = FusedBatchNormalization(name=f"norm{i}")
            pool = keras.layers.MaxPooling3D((1, 2, 2), name=f"pool{i}")
            setattr(self, f"conv{i}", conv)
            setattr(self, f"norm{i}", norm)
            setattr(self, f"pool{i}", pool)
        self.dropout = keras.layers.SpatialDropout3D(dropout) if dropout else None
        height, width = self.frame_shape[0], self.frame_shape[1]
        height, width = -(-height // 2), -(-width // 2)
        for _ in self.filters:
            height, width = height // 2, width // 2
        if height < 1 or width < 1:
            raise ValueError(f"frames {self.frame_shape} are too small for {len(filters)} blocks")
        self._output_dim = height * width * self.filters[-1]

    @property
    def output_dim(self) -> int:
        return self._output_dim

    @property
    def batch_input_shape(self) -> tuple:
        return (None, None, *self.frame_shape)

    def build(self, input_shape):
        shape = (None, None, *self.frame_shape)
        for i, width in enumerate(self.filters):
            conv = getattr(self, f"conv{i}")
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            getattr(self, f"norm{i}").build(shape)
            shape = getattr(self, f"pool{i}").compute_output_shape(shape)
            del width
        super().build(input_shape)

    def call(self, inputs, lengths, training=False):
        x = tf.cast(inputs, self.compute_dtype)
        mask = _time_mask(lengths, tf.shape(x)[1], x.dtype)[:, :, None, None, None]
        for i in range(len(self.filters)):
            x = x * mask
            x = getattr(self, f"conv{i}")(x)
            norm, pool = getattr(self, f"norm{i}"), getattr(self, f"pool{i}")
            if self.pool_first:
                x = tf.nn.relu(norm(pool(x), training=training))
            else:
                x = pool(tf.nn.relu(norm(x, training=training)))
            if self.dropout is not None:
                x = self.dropout(x, training=training)
        shape = tf.shape(x)
        features = tf.reshape(x, [shape[0], shape[1], self._output_dim])
        return features * mask[:, :, :, 0, 0], tf.cast(lengths, tf.int32)


class _BasicBlock(keras.layers.Layer):
    """Two 3x3 convolutions with a shortcut (a 1x1 projection when the shape changes)."""

    def __init__(self, filters: int, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.stride = filters, stride
        self.conv1 = keras.layers.Conv2D(
            filters, 3, strides=stride, padding="same", use_bias=False, name="conv1"
        )
        self.norm1 = FusedBatchNormalization(name="norm1")
        self.conv2 = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="conv2")
        self.norm2 = FusedBatchNormalization(name="norm2")
        self.projection = None
        self.projection_norm = None

    def build(self, input_shape):
        if self.stride != 1 or input_shape[-1] != self.filters:
            self.projection = keras.layers.Conv2D(
                self.filters, 1, strides=self.stride, use_bias=False, name="projection"
            )
            self.projection_norm = FusedBatchNormalization(name="projection_norm")
            self.projection.build(input_shape)
            self.projection_norm.build(self.projection.compute_output_shape(input_shape))
        self.conv1.build(input_shape)
        shape = self.conv1.compute_output_shape(input_shape)
        self.norm1.build(shape)
        self.conv2.build(shape)
        self.norm2.build(shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return self.conv1.compute_output_shape(input_shape)[:-1] + (self.filters,)

    def call(self, x, training=False):
        shortcut = x
        if self.projection is not None:
            shortcut = self.projection_norm(self.projection(x), training=training)
        y = tf.nn.relu(self.norm1(self.conv1(x), training=training))
        y = self.norm2(self.conv2(y), training=training)
        return tf.nn.relu(y + shortcut)


@keras.saving.register_keras_serializable("lipseq")
class ResNetFrontEnd(FrontEnd):
    """3D convolution stem, then a per-frame 2D ResNet and global pooling: [B,T,H,W,C] -> [B,T,D].

    The WLAS / Auto-AVSR family: the stem (5x7x7 Conv3D, spatial stride 2, max-pool) mixes
    neighbouring frames; the ResNet sees each frame alone, so time resolution is kept.
    """

    def __init__(
        self,
        frame_shape,
        stem_filters: int = 32,
        stage_filters=(32, 64, 128, 256),
        blocks_per_stage: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.frame_shape = tuple(frame_shape)
        self.stage_filters = tuple(stage_filters)
        self.stem = keras.layers.Conv3D(
            stem_filters, (5, 7, 7), strides=(1, 2, 2), padding="same", use_bias=False, name="stem"
        )
        self.stem_norm = FusedBatchNormalization(name="stem_norm")
        self.stem_pool = keras.layers.MaxPooling3D(
            (1, 3, 3), strides=(1, 2, 2), padding="same", name="stem_pool"
        )
        self.blocks = []
        for stage, filters in enumerate(self.stage_filters):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layer = _BasicBlock(filters, stride, name=f"block{stage}_{block}")
                setattr(self, f"block{stage}_{block}", layer)
                self.blocks.append(f"block{stage}_{block}")

    @property
    def output_dim(self) -> int:
        return self.stage_filters[-1]

    @property
    def batch_input_shape(self) -> tuple:
        return (None, None, *self.frame_shape)

    def build(self, input_shape):
        shape = (None, None, *self.frame_shape)
        self.stem.build(shape)
        shape = self.stem.compute_output_shape(shape)
        self.stem_norm.build(shape)
        shape = self.stem_pool.compute_output_shape(shape)
        frame = (None, *shape[2:])
        for name in self.blocks:
            block = getattr(self, name)
            block.build(frame)
            frame = block.compute_output_shape(frame)
        super().build(input_shape)

    def call(self, inputs, lengths, training=False):
        x = tf.cast(inputs, self.compute_dtype)
        mask = _time_mask(lengths, tf.shape(x)[1], x.dtype)
        x = x * mask[:, :, None, None, None]
        x = tf.nn.relu(self.stem_norm(self.stem(x), training=training))
        x = self.stem_pool(x)
        shape = tf.shape(x)
        frames = tf.reshape(x, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))
        for name in self.blocks:
            frames = getattr(self, name)(frames, training=training)
        pooled = tf.reduce_mean(frames, axis=[1, 2])
        features = tf.reshape(pooled, [shape[0], shape[1], self.output_dim])
        return features * mask[:, :, None], tf.cast(lengths, tf.int32)


@keras.saving.register_keras_serializable("lipseq")
class LogMelFrontEnd(FrontEnd):
    """Raw waveform [B, S] (floats in [-1, 1]) -> features [B, T', D] at a quarter of 100 Hz.

    Log-mel filterbanks (25 ms windows every 10 ms, `num_mel_bins` bins, stock tf.signal ops
    so the export takes the waveform), normalised per utterance over its real frames, then
    two 3x3 stride-2 convolutions over (time, mel): 100 Hz -> 25 Hz, GRID's video rate, so
    the Listen encoder runs a quarter of the steps and both streams share one time base.
    Training adds SpecAugment-style frequency and time masks.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        num_mel_bins: int = 80,
        filters: int = 64,
        output_dim: int = 256,
        frequency_masks: int = 2,
        max_frequency_mask: int = 15,
        time_masks: int = 2,
        max_time_mask: int = 20,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.sample_rate, self.num_mel_bins = sample_rate, num_mel_bins
        self.frame_length, self.frame_step = sample_rate * 25 // 1000, sample_rate // 100
        self.fft_length = 1 << (self.frame_length - 1).bit_length()
        self.frequency_masks, self.max_frequency_mask = frequency_masks, max_frequency_mask
        self.time_masks, self.max_time_mask = time_masks, max_time_mask
        # "valid" on explicitly padded input: a "same" stride-2 convolution pads by the parity
        # of the whole padded batch, which would shift a clip's windows with its padding.
        self.conv1 = keras.layers.Conv2D(filters, 3, strides=2, padding="valid", name="conv1")
        self.conv2 = keras.layers.Conv2D(filters, 3, strides=2, padding="valid", name="conv2")
        self.projection = keras.layers.Dense(output_dim, name="projection")
        self._output_dim = output_dim
        self.mel_matrix = tf.signal.linear_to_mel_weight_matrix(
            num_mel_bins, self.fft_length // 2 + 1, sample_rate, 20.0, sample_rate / 2 - 400.0
        )

    @property
    def output_dim(self) -> int:
        return self._output_dim

    @property
    def batch_input_shape(self) -> tuple:
        return (None, None)

    def build(self, input_shape):
        shape = (None, None, self.num_mel_bins, 1)
        for conv in (self.conv1, self.conv2):
            shape = (None, None, shape[2] + 2, shape[3])
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.projection.build((None, None, shape[2] * shape[3]))
        super().build(input_shape)

    def log_mel(self, waveform, lengths):
        """waveform [B, S] -> (log-mel [B, F, num_mel_bins], frame lengths [B]) at 100 Hz."""
        waveform = tf.cast(waveform, tf.float32)
        waveform *= tf.cast(tf.sequence_mask(lengths, tf.shape(waveform)[1]), tf.float32)
        spectrum = tf.signal.stft(
            waveform, self.frame_length, self.frame_step, self.fft_length, pad_end=True
        )
        mel = tf.tensordot(tf.abs(spectrum) ** 2, self.mel_matrix, 1)
        frames = -(-tf.cast(lengths, tf.int32) // self.frame_step)
        return tf.math.log(mel + 1e-6), frames

    def _spec_augment(self, features, frames):
        batch, steps = tf.shape(features)[0], tf.shape(features)[1]
        bins = tf.range(self.num_mel_bins)[None, None, :]
        times = tf.range(steps)[None, :, None]
        keep = tf.ones_like(features, tf.bool)
        for _ in range(self.frequency_masks):
            width = tf.random.uniform([batch, 1, 1], 0, self.max_frequency_mask + 1, tf.int32)
            start = tf.random.uniform([batch, 1, 1], 0, self.num_mel_bins, tf.int32)
            keep &= ~((bins >= start) & (bins < start + width))
        for _ in range(self.time_masks):
            width = tf.random.uniform([batch, 1, 1], 0, self.max_time_mask + 1, tf.int32)
            start = tf.cast(
                tf.random.uniform([batch, 1, 1]) * tf.cast(frames[:, None, None], tf.float32),
                tf.int32,
            )
            keep &= ~((times >= start) & (times < start + width))
        return tf.where(keep, features, tf.zeros_like(features))

    def call(self, inputs, lengths, training=False):
        features, frames = self.log_mel(inputs, lengths)
        valid = tf.cast(tf.sequence_mask(frames, tf.shape(features)[1]), tf.float32)[:, :, None]
        count = tf.maximum(tf.reduce_sum(valid, axis=1, keepdims=True), 1.0)
        mean = tf.reduce_sum(features * valid, axis=1, keepdims=True) / count
        variance = tf.reduce_sum(tf.square(features - mean) * valid, axis=1, keepdims=True) / count
        features = (features - mean) / tf.sqrt(variance + 1e-5) * valid
        if training:
            features = self._spec_augment(features, frames)
        x = tf.cast(features[..., None], self.compute_dtype)
        for conv in (self.conv1, self.conv2):
            # Window i reads frames 2i-1..2i+1 whatever the batch's length: ceil(L/2) steps.
            x = tf.nn.relu(conv(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])))
            frames = -(-frames // 2)
            x *= tf.cast(tf.sequence_mask(frames, tf.shape(x)[1]), x.dtype)[:, :, None, None]
        shape = tf.shape(x)
        x = tf.reshape(x, [shape[0], shape[1], x.shape[2] * x.shape[3]])
        mask = tf.cast(tf.sequence_mask(frames, shape[1]), x.dtype)[:, :, None]
        return self.projection(x) * mask, frames


@keras.saving.register_keras_serializable("lipseq")
class TokenEmbedding(FrontEnd):
    """Token ids [B, T] -> embeddings [B, T, D] (scaled, with dropout)."""

    def __init__(self, vocab_size: int, embedding_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.dropout = keras.layers.Dropout(dropout)

    @property
    def output_dim(self) -> int:
        return self.embedding_dim

    def build(self, input_shape):
        self.embedding.build(input_shape)
        super().build(input_shape)

    def call(self, inputs, lengths, training=False):
        features = self.dropout(self.embedding(inputs), training=training)
        return features, tf.cast(lengths, tf.int32)


FRONTENDS = ("embedding", "lipnet", "resnet", "log_mel")


def build_frontend(model_config, input_vocab_size: int | None) -> FrontEnd:
    """The front-end named by `model_config.frontend` (embedding, lipnet, resnet, log_mel)."""
    kind = model_config.frontend
    if kind == "embedding":
        return TokenEmbedding(
            input_vocab_size, model_config.embedding_dim, model_config.dropout, name="frontend"
        )
    if kind == "lipnet":
        return LipNetFrontEnd(
            model_config.frame_shape,
            tuple(model_config.get("lipnet_filters", (32, 64, 96))),
            model_config.get("frontend_dropout", 0.0),
            model_config.get("lipnet_kernels", None),
            pool_first=model_config.get("lipnet_pool_first", False),
            name="frontend",
        )
    if kind == "resnet":
        return ResNetFrontEnd(
            model_config.frame_shape,
            model_config.get("resnet_stem_filters", 32),
            tuple(model_config.get("resnet_stage_filters", (32, 64, 128, 256))),
            model_config.get("resnet_blocks_per_stage", 1),
            name="frontend",
        )
    if kind == "log_mel":
        return LogMelFrontEnd(
            num_mel_bins=model_config.get("audio_mel_bins", 80),
            filters=model_config.get("audio_filters", 64),
            output_dim=model_config.get("audio_features", 256),
            name="frontend",
        )
    raise ValueError(f"unknown front-end {kind!r}; known: {', '.join(FRONTENDS)}")
