"""Learning-rate schedules Keras does not ship: one-cycle (triangular)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_convnets")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from `peak / div_factor` to `peak`, then linear decay to 0.

    The triangular "one-cycle" policy used by fast-training recipes (Smith 2018;
    the Myrtle ResNet-9 DAWNBench recipe). Serializable, so it is saved with the
    optimizer in a `.keras` file.

    Args:
        peak_learning_rate: float. Learning rate at the top of the cycle.
        total_steps: int. Length of the whole cycle in optimizer steps.
        warmup_steps: int. Steps of the rising part.
        div_factor: float. The starting rate is `peak / div_factor`.
            Defaults to 25.
        name: str. Schedule name.

    Example:

    ```python
    schedule = OneCycle(0.01, total_steps=1000, warmup_steps=250)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    ```

    Reference:
        Smith, "A disciplined approach to neural network hyper-parameters",
        arXiv:1803.09820, 2018.
    """

    def __init__(
        self,
        peak_learning_rate,
        total_steps,
        warmup_steps,
        div_factor=25.0,
        name="one_cycle",
    ):
        super().__init__()
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                "Need total_steps >= 1 and 0 <= warmup_steps <= total_steps. "
                f"Received: total_steps={total_steps}, warmup_steps={warmup_steps}"
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.div_factor = float(div_factor)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        start = peak / self.div_factor
        warmup = max(self.warmup_steps, 1)
        rising = start + (peak - start) * step / warmup
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        falling = peak * ops.maximum(
            0.0, 1.0 - (step - self.warmup_steps) / decay_steps
        )
        if self.warmup_steps == 0:
            return falling
        return ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "div_factor": self.div_factor,
            "name": self.name,
        }
