"""The training-only augmentation layer: a named policy at the model input.

The policies and ops are `keras_convnets.data.augment`; this layer is their
second placement, inside the model, so `model.fit(..., jit_compile=True)`
fuses augmentation into the train step on the accelerator.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_convnets.data.augment.policies import get_policy
from keras_convnets.errors import UserInputError


@keras.saving.register_keras_serializable(package="keras_convnets")
class Augment(keras.layers.Layer):
    """Training-only augmentation layer for the model input.

    Applies an image-only policy when `training=True` (as in `model.fit`) and
    passes images through untouched at inference (`predict`, `evaluate`).
    Place it first so that `model.fit(..., jit_compile=True)` fuses the
    augmentation into the train step on the accelerator. A fresh seed per
    step comes from a `keras.random.SeedGenerator` (its state is a
    non-trainable variable, so it is saved with the model).

    `mixup` and `cutmix` also mix the labels, which a layer never sees; they
    raise here: use `keras_convnets.data.augment.augment_dataset` for them.

    Args:
        policy: str. A name from
            `keras_convnets.data.augment.list_policies()`. Defaults to
            `"flip-translate"`.
        seed: int or None. Seed of the layer's generator. Defaults to None.
        params: dict. Overrides of the policy's parameters. Keyword arguments
            that are parameters of the policy are folded into it, so
            `Augment("randaugment", 0, magnitude=0.3)` works.
        **kwargs: other `keras.layers.Layer` arguments (`name`, ...).

    Example:

    ```python
    inputs = keras.Input((32, 32, 3))
    x = Augment("randaugment", seed=0, num_ops=2)(inputs)
    ```
    """

    def __init__(self, policy="flip-translate", seed=None, params=None, **kwargs):
        spec = get_policy(policy)
        params = dict(params or {})
        for key in list(kwargs):
            if key in spec.defaults:
                params[key] = kwargs.pop(key)
        if spec.mixes_labels:
            raise UserInputError(
                f"Augmentation {policy!r} mixes labels, so it cannot run as a "
                "model layer (a layer never sees the labels); use "
                f"augment_dataset(ds, {policy!r}, seed=...) in the tf.data "
                f"pipeline instead. Received: policy={policy!r}"
            )
        super().__init__(**kwargs)
        self.policy = policy
        self.seed = seed
        self.params = params
        self._arguments = spec.resolve(params)
        self._fn = spec.fn
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

    def call(self, inputs, training=True):
        if not training or self.policy == "none":
            return inputs
        key = tf.cast(self.seed_generator.next(), tf.int32)
        images = tf.cast(inputs, tf.float32)
        images, _ = self._fn(images, None, key, **self._arguments)
        return tf.cast(images, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"policy": self.policy, "seed": self.seed, "params": self.params})
        return config
