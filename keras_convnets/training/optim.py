"""The optimizer and learning-rate schedule of a training job, from plain arguments.

`build_optimizer` is what `train`, the architecture search and the
experiments compile with; its defaults are `TrainConfig`'s.
"""

from __future__ import annotations

import keras

from keras_convnets.training.schedules import OneCycle

# Weight names that get no weight decay: biases and normalization parameters.
NO_DECAY = ["bias", "gamma", "beta", "moving_mean", "moving_variance"]


def build_optimizer(
    *,
    learning_rate: float,
    epochs: int,
    steps_per_epoch: int,
    optimizer: str = "adamw",
    schedule: str = "cosine",
    warmup_epochs: float = 1.0,
    weight_decay: float = 5e-4,
    momentum: float = 0.9,
    ema: float = 0.0,
) -> keras.optimizers.Optimizer:
    """Builds an optimizer with its learning-rate schedule.

    Args:
        learning_rate: float. Peak learning rate.
        epochs: int. Length of the run (the schedules decay over it).
        steps_per_epoch: int. Optimizer steps per epoch.
        optimizer: str. `adam`, `adamw`, `sgd` or `nesterov` (SGD with
            Nesterov momentum). Defaults to `adamw`.
        schedule: str. `constant`; `cosine` (linear warmup from
            `learning_rate / 25`, then cosine decay to 0); or `one-cycle`
            (linear up for the warmup, then linear down to 0). Defaults to
            `cosine`.
        warmup_epochs: float. Warmup length in epochs. Defaults to 1.0.
        weight_decay: float. Decoupled weight decay, not applied to biases and
            normalization weights (`NO_DECAY`); 0 for none. Defaults to 5e-4.
        momentum: float. Momentum of `sgd` and `nesterov`. Defaults to 0.9.
        ema: float. Momentum per step of an exponential moving average of the
            weights, copied into the model at every epoch's last step; 0 for
            none. Defaults to 0.

    Returns:
        A `keras.optimizers.Optimizer`.

    Example:

    ```python
    optimizer = build_optimizer(learning_rate=2e-3, epochs=12, steps_per_epoch=422)
    ```
    """
    total = max(1, epochs * steps_per_epoch)
    warmup = min(total, int(round(warmup_epochs * steps_per_epoch)))
    lr = learning_rate
    if schedule == "constant":
        rate = lr
    elif schedule == "cosine":
        if warmup:
            rate = keras.optimizers.schedules.CosineDecay(
                initial_learning_rate=lr / 25.0,
                decay_steps=max(1, total - warmup),
                warmup_target=lr,
                warmup_steps=warmup,
            )
        else:
            rate = keras.optimizers.schedules.CosineDecay(lr, decay_steps=total)
    else:  # one-cycle
        rate = OneCycle(lr, total_steps=total, warmup_steps=warmup)

    decay = weight_decay or None
    # Weight EMA: the average replaces the weights at every epoch's last step,
    # so validation, checkpoints and resume all see the averaged model.
    average = (
        dict(
            use_ema=True,
            ema_momentum=ema,
            ema_overwrite_frequency=steps_per_epoch,
        )
        if ema
        else {}
    )
    if optimizer == "adam":
        result = keras.optimizers.Adam(rate, weight_decay=decay, **average)
    elif optimizer == "adamw":
        result = keras.optimizers.AdamW(rate, weight_decay=weight_decay, **average)
    else:
        result = keras.optimizers.SGD(
            rate,
            momentum=momentum,
            nesterov=optimizer == "nesterov",
            weight_decay=decay,
            **average,
        )
    if weight_decay:
        result.exclude_from_weight_decay(var_names=NO_DECAY)
    return result
