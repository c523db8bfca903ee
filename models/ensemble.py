"""Several trained sequence-to-sequence models with one target vocabulary, searched as one.

    ensemble = Ensemble([model_a, model_b])
    beam_search(ensemble, inputs, lengths, ...)   # any search in models/search.py

The ensemble presents the interface the searches read from a model (`encode`, and a
`decoder` with `prepare_memory`, `initial_state`, `step`, `listed_projection`, `vocab_size`);
each member encodes the source with its own weights and keeps its own decoder state, and the
step's output is the log of the members' mean next-label probability. Averaging
probabilities rather than log-probabilities lets one confident member outvote the others
only as far as its probability mass goes, and the result stays a normalised distribution, so
length penalties, fusion and candidate lists treat it as one model's. Alignments are the
members' mean (what `<unk>` replacement and the attention plots read).
"""

import math

import tensorflow as tf


class EnsembleDecoder(tf.Module):
    """The members' decoders stepped together; states and memories are per-member lists."""

    def __init__(self, decoders, name="ensemble_decoder"):
        super().__init__(name=name)
        self.decoders = list(decoders)
        sizes = {decoder.vocab_size for decoder in self.decoders}
        if len(sizes) != 1:
            raise ValueError(f"ensemble members need one target vocabulary, got sizes {sizes}")
        self.vocab_size = sizes.pop()

    def prepare_memory(self, memories, memory_lengths) -> dict:
        members = [
            decoder.prepare_memory(memory, lengths)
            for decoder, memory, lengths in zip(
                self.decoders, memories, memory_lengths, strict=True
            )
        ]
        return {"mask": members[0]["mask"], "members": members}

    def initial_state(self, encoder_states, memory: dict) -> dict:
        return {
            "members": [
                decoder.initial_state(state, member_memory)
                for decoder, state, member_memory in zip(
                    self.decoders, encoder_states, memory["members"], strict=True
                )
            ]
        }

    def listed_projection(self, output_ids):
        return [decoder.listed_projection(output_ids) for decoder in self.decoders]

    def step(self, token_ids, state, memory, listed=None):
        """ids [B] -> (log mean probability [B, V], new state, mean alignment [B, S])."""
        log_probs, states, alignments = [], [], []
        for index, decoder in enumerate(self.decoders):
            options = {} if listed is None else {"listed": listed[index]}
            logits, member_state, alignment = decoder.step(
                token_ids, state["members"][index], memory["members"][index], **options
            )
            log_probs.append(tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1))
            states.append(member_state)
            alignments.append(tf.cast(alignment, tf.float32))
        mean = tf.reduce_logsumexp(tf.stack(log_probs), axis=0) - math.log(len(log_probs))
        return mean, {"members": states}, tf.add_n(alignments) / len(alignments)


class Ensemble(tf.Module):
    """Trained models (Seq2Seq, same target vocabulary) as one model for the searches."""

    ctc_head = None  # the members' CTC heads are not combined: attention searches only

    def __init__(self, members, name="ensemble"):
        super().__init__(name=name)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        self.members = list(members)
        self.decoder = EnsembleDecoder([member.decoder for member in self.members])

    def encode(self, inputs, input_lengths, training=False):
        """(per-member memories, per-member memory lengths, per-member encoder states)."""
        encoded = [
            member.encode(inputs, input_lengths, training=training) for member in self.members
        ]
        memories, lengths, states = zip(*encoded, strict=True)
        return list(memories), list(lengths), list(states)
