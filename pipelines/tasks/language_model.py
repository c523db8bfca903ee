"""Language modelling: sentences in, their probability out; validation metric perplexity.

The model is models.language_model's decoder stack; the data are lines prepared by
data_prep.language_model (characters or SentencePiece pieces). Perplexity is exp of the mean
negative log-likelihood per token, end of sentence included; character models also report
bits per character. The export scores strings: `serving_default(text)` -> log_prob,
num_tokens and perplexity per sentence, tokenised inside the graph.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from data_prep.errors import ConfigError
from data_prep.language_model import (
    prepare_language_model,
    read_split_ids,
    vocabulary_from_manifest,
)
from models.language_model import build_language_model, sequence_log_probs
from pipelines.artifacts.exports import load_export
from pipelines.scoring import read_text_lines
from pipelines.signatures.language_model import SentenceScorer
from pipelines.tasks.base import Task


class LanguageModelTask(Task):
    """Text -> next-token probabilities; trained on held-out perplexity."""

    name = "language_model"
    metric = "perplexity"
    higher_is_better = False

    def prepare(self) -> dict:
        return prepare_language_model(self.config)

    def describe_prepared(self, manifest: dict) -> list[str]:
        return [
            f"{split}: {entry['num_examples']} lines, {entry['num_tokens']} tokens "
            f"(dropped {entry['dropped']})"
            for split, entry in manifest["splits"].items()
        ]

    @functools.cached_property
    def vocabulary(self):
        return vocabulary_from_manifest(self.prepared_dir, self.manifest)

    def build_model(self):
        return build_language_model(self.config.model, int(self.manifest["vocab"]["size"]))

    def batch_signature(self) -> dict:
        ids, lengths = tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)
        return {"targets": ids, "labels": ids, "target_lengths": lengths}

    @functools.cached_property
    def _memo(self) -> dict:
        return {}

    def _split_ids(self, split: str) -> list[np.ndarray]:
        """The ids of every line of a split, read once (every epoch reorders the same lines)."""

        key = ("ids", split)
        if key not in self._memo:
            self._memo[key] = read_split_ids(self.prepared_dir, self.manifest, split)
        return self._memo[key]

    def _log_probs(self, model):
        """sequence_log_probs of `model` as one tf.function, traced once per model (each
        validation would otherwise trace it again)."""
        key = ("log_probs", id(model))
        if key not in self._memo:
            self._memo[key] = tf.function(
                lambda t, y, n: sequence_log_probs(model, t, y, n), reduce_retracing=True
            )
        return self._memo[key]

    def _batches(self, lines: list[np.ndarray], batch_size: int) -> tf.data.Dataset:
        """Padded batches of bos + ids (targets) and ids + eos (labels)."""
        bos, eos = self.vocabulary.bos_id, self.vocabulary.eos_id
        ragged = tf.RaggedTensor.from_row_lengths(
            np.concatenate(lines).astype(np.int32), [len(line) for line in lines]
        )

        def pair(ids):
            return {
                "targets": tf.concat([[bos], ids], 0),
                "labels": tf.concat([ids, [eos]], 0),
                "target_lengths": tf.size(ids) + 1,
            }

        return tf.data.Dataset.from_tensor_slices(ragged).map(pair).padded_batch(batch_size)

    def train_dataset(self, epoch: int, batch_size=None, shard=None) -> tf.data.Dataset:
        lines = self._split_ids(self.config.data.train_split)
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(lines))
        if shard is not None:
            order = order[shard[0] :: shard[1]]
        # Sentences of about one length share a batch (less padding); batches are shuffled.
        batch_size = batch_size or self.config.batch_size
        window = batch_size * 50
        ordered = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda i: len(lines[i]))
            ordered.extend(chunk)
        batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
        np.random.default_rng([self.config.seed, epoch, 1]).shuffle(batches)
        flat = [lines[i] for batch in batches for i in batch]
        return self._batches(flat, batch_size)

    def perplexity(self, model, split: str, limit: int = 0) -> dict:
        """Perplexity (and bits per character for character models) of `model` on a split."""
        lines = self._split_ids(split)
        if limit:
            lines = lines[:limit]
        total, tokens = 0.0, 0
        function = self._log_probs(model)
        for batch in self._batches(lines, 64):
            log_probs = function(batch["targets"], batch["labels"], batch["target_lengths"])
            total += float(tf.reduce_sum(log_probs))
            tokens += int(tf.reduce_sum(batch["target_lengths"]))
        characters = sum(len(self.vocabulary.decode(line)) + 1 for line in lines)
        return perplexity_report(total, tokens, characters, len(lines))

    def make_validator(self, model):
        split = self.config.data.eval_split
        if split not in self.manifest["splits"]:
            return None
        limit = self.config.eval_max_examples

        def validate() -> tuple[float, str]:
            report = self.perplexity(model, split, limit)
            return report["perplexity"], self.sample(model)

        return validate

    def sample(self, model, max_tokens: int = 80) -> str:
        """The model's most likely sentence (greedy), to show in the training log."""
        state = model.initial_state(1)
        token, out = tf.constant([self.vocabulary.bos_id]), []
        for _ in range(max_tokens):
            logits, state = model.step(token, state)
            token = tf.argmax(logits, -1, output_type=tf.int32)
            if int(token[0]) == self.vocabulary.eos_id:
                break
            out.append(int(token[0]))
        return self.vocabulary.decode(out)

    def scorer(self, model):
        return SentenceScorer(model, self.prepared_dir, self.manifest["vocab"])

    def serving_module(self, model, language_model=None):
        """serving_default(text: string [B]) -> log_prob, num_tokens, perplexity [B]."""
        if language_model is not None:
            raise ConfigError("language-model exports do not fuse a language model yet")
        module = self.scorer(model)
        signatures = {"serving_default": module.score.get_concrete_function()}
        info = {
            "vocab": self.manifest["vocab"],
            "signatures": {"serving_default": "sentence log-probability and perplexity"},
        }
        if self.manifest["vocab"]["kind"] == "sentencepiece":
            info["requires"] = ["tensorflow", "tensorflow_text (import it before loading)"]
            info["requires_modules"] = ["tensorflow_text"]
        return module, signatures, info

    def evaluate(
        self,
        export_dir,
        *,
        split="test",
        inputs=None,
        references=None,
        modes=None,
        batch_size=64,
    ) -> dict:
        """Perplexity of an export on a prepared split's text or on a text file (`inputs`)."""

        if references or modes:
            raise ConfigError("language-model evaluation takes --source (text) only")
        path = Path(inputs) if inputs else self.prepared_dir / f"{split}.txt"
        if not inputs and split not in self.manifest["splits"]:
            raise ConfigError(f"no {split!r} split in {self.prepared_dir}")
        lines = [line for line in read_text_lines(path) if line.strip()]
        loaded, _ = load_export(export_dir, task=self.name)
        score = loaded.signatures["serving_default"]
        sentences, total, tokens, characters = [], 0.0, 0, 0
        for start in range(0, len(lines), batch_size):
            chunk = lines[start : start + batch_size]
            out = score(text=tf.constant(chunk))
            for text, log_prob, count in zip(
                chunk, out["log_prob"].numpy(), out["num_tokens"].numpy(), strict=True
            ):
                sentences.append({"text": text, "log_prob": float(log_prob), "tokens": int(count)})
                total, tokens = total + float(log_prob), tokens + int(count)
                characters += len(text) + 1
        summary = perplexity_report(total, tokens, characters, len(lines))
        summary.update(model=str(export_dir), text=str(path), vocab=self.manifest["vocab"]["kind"])
        return {"summary": summary, "sentences": sentences}

    def report_lines(self, report: dict) -> list[str]:
        s = report["summary"]
        bits = (
            f", {s['bits_per_character']:.3f} bits per character"
            if "bits_per_character" in s
            else ""
        )
        return [
            f"perplexity {s['perplexity']:.3f} per token{bits} on {s['num_sentences']} sentences "
            f"({s['num_tokens']} tokens, end of sentence included) of {s.get('text', '')}"
        ]


def perplexity_report(log_prob: float, tokens: int, characters: int, sentences: int) -> dict:
    """Perplexity per token and bits per character (characters + one end per sentence)."""
    return {
        "perplexity": round(math.exp(-log_prob / max(tokens, 1)), 4),
        "bits_per_character": round(-log_prob / math.log(2) / max(characters, 1), 4),
        "num_tokens": tokens,
        "num_sentences": sentences,
    }
