"""One audio-visual model read three ways: lips only, sound only, or both.

    transcriber = AudioVisualTranscriber(model, config, normalisation, frame_shape)
    transcriber.modality_functions["audio"]["joint"](audio, audio_lengths)

Every decoding mode of the lip-reading Transcriber exists for each modality. A stream the
modality does not read gets a short zero filler, and the model drops it exactly as modality
dropout did in training; the searches read the first stream of the modality (its CTC head,
memory lengths and attention alignments): video for "video", audio for "audio", and the
configured primary stream for "audio_visual".
"""

from __future__ import annotations

import tensorflow as tf

from models.multistream import reading_streams
from pipelines.inputs.video import inference_frames
from pipelines.signatures.transcriber import Transcriber

MODALITIES = ("audio_visual", "video", "audio")
FILLER_FRAMES = 4
FILLER_SAMPLES = 1600


class AudioVisualTranscriber(Transcriber):
    """Frames (uint8, as prepared) and/or the raw 16 kHz waveform (floats in [-1, 1]) -> text.

    `functions` (from Transcriber) read the video alone; `modality_functions[modality][mode]`
    take (frames, lengths), (audio, audio_lengths) or all four.
    """

    def __init__(
        self,
        model,
        config,
        normalisation: dict,
        frame_shape,
        vocabulary=None,
        grammar: bool = False,
        language_model=None,
    ):
        self.frame_shape = tuple(int(x) for x in frame_shape)
        primary = config.model.primary_stream
        self.both = [primary] + [s for s in model.streams if s != primary]
        self.ctc_heads = config.decode.ctc_heads
        self.ctc_head_weights = dict(config.decode.ctc_head_weights)
        super().__init__(model, config, normalisation, vocabulary, grammar, language_model)
        frames = tf.TensorSpec([None, None, None, None, None], tf.uint8, name="frames")
        lengths = tf.TensorSpec([None], tf.int32, name="lengths")
        audio = tf.TensorSpec([None, None], tf.float32, name="audio")
        audio_lengths = tf.TensorSpec([None], tf.int32, name="audio_lengths")
        self.modality_functions = {
            "video": self.functions,
            "audio": {
                mode: tf.function(
                    lambda a, n, mode=mode: self._read(["audio"], None, None, a, n, mode),
                    input_signature=[audio, audio_lengths],
                )
                for mode in self.available_modes()
            },
            "audio_visual": {
                mode: tf.function(
                    lambda f, n, a, an, mode=mode: self._read(self.both, f, n, a, an, mode),
                    input_signature=[frames, lengths, audio, audio_lengths],
                )
                for mode in self.available_modes()
            },
        }

    def _transcribe(self, frames, lengths, mode, fusion=None):
        return self._read(["video"], frames, lengths, None, None, mode, fusion)

    def _read(self, streams, frames, lengths, audio, audio_lengths, mode, fusion=None):
        """One mode's search over the modality's streams; fusion as in Transcriber._search."""
        present = lengths if lengths is not None else audio_lengths
        batch = tf.shape(present)[0]
        if frames is None:
            frames = tf.zeros([batch, FILLER_FRAMES, *self.frame_shape], tf.uint8)
            lengths = tf.fill([batch], FILLER_FRAMES)
        if audio is None:
            audio = tf.zeros([batch, FILLER_SAMPLES], tf.float32)
            audio_lengths = tf.fill([batch], FILLER_SAMPLES)
        inputs = {
            "video": inference_frames(frames, self.mean, self.std, self.crop_size),
            "audio": tf.cast(audio, tf.float32),
        }
        input_lengths = {
            "video": tf.cast(lengths, tf.int32),
            "audio": tf.cast(audio_lengths, tf.int32),
        }
        # config.decode.ctc_heads "all": joint decoding of both streams scores with both
        # streams' CTC heads (shares from config.decode.ctc_head_weights), not the primary
        # stream's alone.
        every_head = len(streams) > 1 and self.ctc_heads == "all"
        with reading_streams(self.model, streams, every_head, self.ctc_head_weights) as view:
            return self._search(view, inputs, input_lengths, mode, tf.shape(frames)[1], fusion)
