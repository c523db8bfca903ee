"""A test-only task, `reverse`: digit strings in, the same digits reversed out.

It exists to show the task seam: this module plus one `register_task` call is everything a
new task needs; the CLIs, the training loop, export and evaluation are untouched. It is also
an experiment config (`--config=tests/tiny_task.py`).
"""

from __future__ import annotations

import json
import random

import tensorflow as tf

from configs.common import base_config, finish
from data_prep.atomic import write_json_atomic
from data_prep.records import write_manifest
from models.search import greedy_search
from models.seq2seq import build_model
from pipelines.artifacts.exports import load_export, signature
from pipelines.tasks import Task

PAD, BOS, EOS = 0, 1, 2
VOCAB = 13  # pad, bos, eos and the digits 0-9 as ids 3-12


def get_config(variant: str = ""):
    config = base_config("reverse")
    config.data.prepared_dir = "runs/reverse/data"
    config.model.embedding_dim = 16
    config.model.encoder_units = 32
    config.model.encoder_layers = 1
    config.model.decoder_units = 64
    config.model.dropout = 0.0
    config.batch_size = 32
    config.num_train_steps = 300
    config.learning_rate = 1e-2
    config.warmup_steps = 10
    config.decay_steps = 300
    config.label_smoothing = 0.0
    config.log_every = 50
    config.checkpoint_every = 100
    config.eval_every = 150
    config.decode.max_length = 12
    return finish(config)


def _encode(digits: str) -> list[int]:
    return [3 + int(d) for d in digits]


def _decode(ids) -> str:
    return "".join(str(int(i) - 3) for i in ids if int(i) >= 3)


class ReverseTask(Task):
    """Digit strings -> reversed digit strings; metric: exact-match accuracy (%)."""

    name = "reverse"
    metric = "accuracy"
    higher_is_better = True

    def prepare(self) -> dict:
        rng = random.Random(self.config.seed)
        splits = {}
        for split, count in (("train", 2000), ("val", 50), ("test", 50)):
            digits = [
                "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 5)))
                for _ in range(count)
            ]
            write_json_atomic(self.prepared_dir / f"{split}.json", digits)
            splits[split] = {"num_examples": count, "files": [{"path": f"{split}.json"}]}
        manifest = {"task": self.name, "splits": splits}
        write_manifest(self.prepared_dir, manifest)
        return manifest

    def _examples(self, split: str) -> list[str]:
        return json.loads((self.prepared_dir / f"{split}.json").read_text())

    def build_model(self):
        return build_model(self.config.model, VOCAB, VOCAB)

    def batch_signature(self) -> dict:
        ids, lengths = tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)
        return {
            "inputs": ids,
            "input_lengths": lengths,
            "targets": ids,
            "labels": ids,
            "target_lengths": lengths,
        }

    def train_dataset(self, epoch: int, batch_size=None, shard=None) -> tf.data.Dataset:
        digits = self._examples("train")
        random.Random(self.config.seed * 1000 + epoch).shuffle(digits)

        def rows():
            for d in digits:
                source, target = _encode(d) + [EOS], _encode(d[::-1])
                yield {
                    "inputs": source,
                    "input_lengths": len(source),
                    "targets": [BOS] + target,
                    "labels": target + [EOS],
                    "target_lengths": len(target) + 1,
                }

        spec = {k: tf.TensorSpec(v.shape[1:], v.dtype) for k, v in self.batch_signature().items()}
        dataset = tf.data.Dataset.from_generator(rows, output_signature=spec)
        return dataset.padded_batch(batch_size or self.config.batch_size)

    def _reverser(self, model):
        module = tf.Module()
        module.model = model

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None], tf.int32, name="inputs"),
                tf.TensorSpec([None], tf.int32, name="lengths"),
            ]
        )
        def reverse(inputs, lengths):
            max_lengths = tf.fill(tf.shape(lengths), self.config.decode.max_length)
            result = greedy_search(model, inputs, lengths, BOS, EOS, max_lengths)
            return {"ids": result["ids"], "lengths": result["lengths"]}

        module.reverse = reverse
        return module

    def _accuracy(self, function, digits: list[str]) -> tuple[float, list[str]]:
        sources = [_encode(d) + [EOS] for d in digits]
        width = max(len(s) for s in sources)
        inputs = tf.constant([s + [PAD] * (width - len(s)) for s in sources], tf.int32)
        out = function(inputs, tf.constant([len(s) for s in sources], tf.int32))
        outputs = [
            _decode(row[:n])
            for row, n in zip(out["ids"].numpy(), out["lengths"].numpy(), strict=True)
        ]
        right = sum(o == d[::-1] for o, d in zip(outputs, digits, strict=True))
        return 100.0 * right / len(digits), outputs

    def make_validator(self, model):
        reverse = self._reverser(model).reverse
        digits = self._examples("val")

        def validate():
            accuracy, outputs = self._accuracy(reverse, digits)
            return accuracy, outputs[0]

        return validate

    def serving_module(self, model):
        module = self._reverser(model)
        return module, {"serving_default": module.reverse.get_concrete_function()}, {}

    def evaluate(
        self, export_dir, *, split="test", inputs=None, references=None, modes=None, batch_size=32
    ) -> dict:
        loaded, _ = load_export(export_dir, task=self.name)
        function = signature(loaded, export_dir, "serving_default")
        digits = self._examples(split)
        accuracy, outputs = self._accuracy(lambda i, n: function(inputs=i, lengths=n), digits)
        return {
            "summary": {"accuracy": accuracy, "num_examples": len(digits)},
            "examples": [{"input": d, "output": o} for d, o in zip(digits, outputs, strict=True)],
        }

    def report_lines(self, report: dict) -> list[str]:
        summary = report["summary"]
        return [f"accuracy = {summary['accuracy']:.1f} % ({summary['num_examples']} examples)"]
