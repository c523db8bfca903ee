"""Translation: parallel text in, text out; validation metric BLEU (greedy search)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import tensorflow as tf
from absl import logging

from data_prep.corpora.text import CorpusError
from data_prep.errors import ConfigError
from data_prep.records import read_manifest
from data_prep.translation import prepare_translation
from models.seq2seq import build_model
from pipelines.inference.translation import load_translate_modes, translate_all
from pipelines.inputs.text import make_config_dataset
from pipelines.scoring import corpus_bleu, read_text_lines, score_translations
from pipelines.signatures.translator import Translator
from pipelines.tasks.base import Task


def _spec(shape, dtype=tf.int32):
    return tf.TensorSpec(shape, dtype)


class TranslationTask(Task):
    """Source sentences -> target sentences through SentencePiece subwords."""

    name = "translation"
    metric = "bleu"
    higher_is_better = True

    def prepare(self) -> dict:
        return prepare_translation(self.config)

    def describe_prepared(self, manifest: dict) -> list[str]:
        return [
            f"{split}: {entry['num_examples']} examples (dropped {entry['dropped']})"
            for split, entry in manifest["splits"].items()
        ]

    def _vocab(self) -> dict:
        return self.manifest["vocab"]

    def ensemble_vocabulary(self) -> str:
        """The manifest's vocabulary entry (it holds the files' sha256): runs prepared apart
        but with the same vocabularies may be ensembled, since ids then mean the same words."""
        return json.dumps(self._vocab(), sort_keys=True)

    def build_model(self):
        vocab = self._vocab()
        return build_model(
            self.config.model,
            int(vocab["source"]["vocab_size"]),
            int(vocab["target"]["vocab_size"]),
        )

    def batch_signature(self) -> dict:
        ids, lengths = _spec([None, None]), _spec([None])
        return {
            "inputs": ids,
            "input_lengths": lengths,
            "targets": ids,
            "labels": ids,
            "target_lengths": lengths,
        }

    def train_dataset(self, epoch: int, batch_size=None, shard=None) -> tf.data.Dataset:
        return make_config_dataset(
            self.config,
            self.prepared_dir,
            self.manifest,
            self.config.data.train_split,
            training=True,
            epoch=epoch,
            batch_size=batch_size,
            shard=shard,
        )

    def translator(self, model, language_model=None):
        """The in-graph string-to-string wrapper around `model` (and a target-side language
        model for shallow fusion in beam search)."""

        vocab = self._vocab()
        return Translator(
            model,
            self.prepared_dir / vocab["source"]["model"],
            self.prepared_dir / vocab["target"]["model"],
            self.config,
            vocab,
            language_model=language_model,
            dictionary=self.prepared_dir / vocab["dictionary"]["path"]
            if "dictionary" in vocab
            else None,
        )

    def make_validator(self, model):
        split = self.config.data.eval_split
        if split not in self.manifest["splits"]:
            logging.warning("no %r split prepared: validation is skipped", split)
            return None
        limit = self.config.eval_max_examples or None
        sources = read_text_lines(self.prepared_dir / f"{split}.source.txt")[:limit]
        references = read_text_lines(self.prepared_dir / f"{split}.target.txt")[:limit]
        translator = self.translator(model)

        def validate() -> tuple[float, str]:
            hypotheses = translate_all(translator.translate_greedy, sources)["text"]
            return corpus_bleu(hypotheses, references), hypotheses[0]

        return validate

    def serving_module(self, model, language_model=None):
        """serving_default(source: string [B]): beam search; greedy(source): greedy search;
        with a language model of the target side, beam_lm(source, lm_weight, lm_length_bonus):
        beam search with shallow fusion.

        All return text [B], scores [B], alignments [B, T, S] and lengths [B].
        """
        target_size = int(self._vocab()["target"]["vocab_size"])
        if language_model is not None and language_model.vocab_size != target_size:
            raise ConfigError(
                f"the language model has {language_model.vocab_size} labels but the target "
                f"vocabulary {target_size}: train it on the translation's target SentencePiece "
                "model (config.data.vocabulary of the language model)"
            )
        translator = self.translator(model, language_model)
        decode = self.config.decode
        signatures = {
            "serving_default": translator.translate_beam.get_concrete_function(),
            "greedy": translator.translate_greedy.get_concrete_function(),
        }
        if language_model is not None:
            signatures["beam_lm"] = translator.translate_beam_lm.get_concrete_function()
        if translator.has_candidates:
            function = translator.translate_beam_candidates
            signatures["beam_candidates"] = function.get_concrete_function()
        info = {
            "vocab": self._vocab(),
            "signatures": {
                "serving_default": f"beam search, beam_size={decode.beam_size}, "
                f"length_penalty={decode.length_penalty}",
                "greedy": "greedy search",
            },
            "requires": ["tensorflow", "tensorflow_text (import it before loading)"],
            "requires_modules": ["tensorflow_text"],
        }
        if "beam_candidates" in signatures:
            info["signatures"]["beam_candidates"] = (
                f"beam search over the {decode.candidate_frequent} most frequent "
                "target words plus the dictionary's translations of the source words"
            )
        if language_model is not None:
            info["signatures"]["beam_lm"] = "beam search fused with the target language model"
            info["language_model"] = {
                "lm_weight": float(decode.lm_weight),
                "lm_length_bonus": float(decode.lm_length_bonus),
            }
        return translator, signatures, info

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
        """BLEU/chrF of each mode (beam, greedy) on source/reference files or a prepared split."""

        if bool(inputs) != bool(references):
            raise ConfigError("give both --source and --reference, or neither")
        if inputs:
            source_path, reference_path = Path(inputs), Path(references)
        else:
            read_manifest(self.prepared_dir, self.name)
            source_path = self.prepared_dir / f"{split}.source.txt"
            reference_path = self.prepared_dir / f"{split}.target.txt"
        sources, targets = read_text_lines(source_path), read_text_lines(reference_path)
        if len(sources) != len(targets):
            raise CorpusError(
                f"{source_path} has {len(sources)} lines but {reference_path} has {len(targets)}"
            )
        report: dict = {"summary": {"modes": {}}, "sentences": []}
        functions = load_translate_modes(export_dir, modes or ["beam"])
        for mode, translate in functions.items():
            started = time.monotonic()
            hypotheses = translate_all(translate, sources, batch_size)["text"]
            seconds = time.monotonic() - started
            scored = score_translations(sources, hypotheses, targets)
            scored["summary"].update(
                mode=mode,
                seconds=round(seconds, 2),
                sentences_per_second=round(len(sources) / max(seconds, 1e-9), 2),
            )
            report["summary"]["modes"][mode] = scored["summary"]
            if not report["sentences"]:
                report["sentences"] = scored["sentences"]
        first = next(iter(report["summary"]["modes"].values()))
        report["summary"].update(
            {
                k: first[k]
                for k in (
                    "bleu",
                    "chrf",
                    "bleu_lowercased",
                    "bleu_signature",
                    "bleu_lowercased_signature",
                    "num_sentences",
                )
            },
            model=str(export_dir),
            source=str(source_path),
            reference=str(reference_path),
        )
        return report

    def report_lines(self, report: dict) -> list[str]:
        return [
            f"{mode:8s} BLEU = {s['bleu']:.2f}  chrF = {s['chrf']:.2f}  lowercased BLEU = "
            f"{s['bleu_lowercased']:.2f}  ({s['num_sentences']} "
            f"sentences, {s['sentences_per_second']:.1f} sentences/s)  {s['bleu_signature']}"
            for mode, s in report["summary"]["modes"].items()
        ]
