"""The tf.Modules an export saves: every decoding mode as a graph function of raw inputs
(uint8 frames, waveforms or strings), so a fresh process needs no project code."""
