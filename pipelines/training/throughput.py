"""The every-config.log_every report: mean loss, learning rate, speed and ETA over the steps
since the last report, to metrics.jsonl, TensorBoard and the log."""

import time

from absl import logging

from pipelines.training.clock import BudgetClock
from pipelines.training.metrics import MetricsLog, format_duration
from pipelines.training.progress import Progress


class ThroughputLog:
    """Sums steps, loss, target tokens and examples between reports."""

    def __init__(
        self,
        metrics: MetricsLog,
        clock: BudgetClock,
        progress: Progress,
        *,
        num_train_steps: int,
    ):
        self.metrics, self.clock, self.progress = metrics, clock, progress
        self.num_train_steps = num_train_steps
        self._reset()

    def _reset(self) -> None:
        self.started = time.monotonic()
        self.tokens, self.sentences, self.loss, self.steps = 0.0, 0, 0.0, 0

    def add(self, loss: float, tokens: float, sentences: int) -> None:
        self.tokens += tokens
        self.sentences += sentences
        self.loss += loss
        self.steps += 1

    def report(self, step: int, learning_rate: float, grad_norm: float) -> None:
        """Writes and logs the window's figures at `step`, then starts a new window."""
        elapsed = time.monotonic() - self.started
        steps_per_second = self.steps / elapsed
        remaining = (self.num_train_steps - step) / steps_per_second
        if self.clock.budget_seconds:
            remaining = min(remaining, self.clock.seconds_left())
        mean_loss = self.loss / self.steps
        self.metrics.write(
            step,
            loss=mean_loss,
            learning_rate=learning_rate,
            grad_norm=grad_norm,
            steps_per_second=steps_per_second,
            target_tokens_per_second=self.tokens / elapsed,
            sentences_per_second=self.sentences / elapsed,
            **self.progress.position(),
        )
        logging.info(
            "step %d/%d epoch %d: loss %.3f lr %.2e | %.1f steps/s %.0f tokens/s "
            "%.0f sentences/s | ETA %s",
            step,
            self.num_train_steps,
            int(self.progress.epoch.numpy()),
            mean_loss,
            learning_rate,
            steps_per_second,
            self.tokens / elapsed,
            self.sentences / elapsed,
            format_duration(remaining),
        )
        self._reset()
