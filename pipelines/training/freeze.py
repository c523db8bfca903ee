"""Holding the model's front-end still for a run's first steps (adapting a trained model)."""

import tensorflow as tf


class FrontendFreeze:
    """Zeroes the gradients of the variables the model's `frontend_variables()` names while
    the optimizer has taken fewer than `steps` steps (config.freeze_frontend_steps; 0: never,
    and the model is not asked)."""

    def __init__(self, model, steps: int):
        self.steps = steps
        self._frozen_ids = {id(v) for v in model.frontend_variables()} if steps else set()

    def hold(self, gradients: list, variables: list, iterations: tf.Variable) -> list:
        """The gradients with the frozen variables' replaced by zeros until step `steps`."""
        if not self._frozen_ids:
            return gradients
        frozen = iterations < self.steps
        return [
            tf.where(frozen, tf.zeros_like(g), g) if id(v) in self._frozen_ids else g
            for g, v in zip(gradients, variables, strict=True)
        ]
