"""Named policies, and the two functions that apply them to batches.

`augment_batch` applies a policy to one batch (what both placements share);
`augment_dataset` maps it over a batched `tf.data.Dataset`, one XLA-compiled
call per batch. The model-layer placement is `keras_convnets.layers.Augment`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from keras_convnets.data.augment.geometry import flip, translate
from keras_convnets.data.augment.mixing import cutmix, cutout, mixup, random_erasing
from keras_convnets.data.augment.randaugment import rand_augment
from keras_convnets.data.augment.random import batch_seed, make_seed, split
from keras_convnets.errors import UserInputError

__all__ = [
    "Policy",
    "augment_batch",
    "augment_dataset",
    "get_policy",
    "list_policies",
]


@dataclasses.dataclass(frozen=True)
class Policy:
    """A named augmentation policy: a batched function and its parameters.

    `fn(images, labels, seed, **params) -> (images, labels)`; policies that do
    not mix labels pass them through untouched (they may be None).
    """

    name: str
    fn: Callable
    defaults: dict
    description: str
    mixes_labels: bool = False

    def resolve(self, params: dict) -> dict:
        """Defaults overridden by `params`; unknown names raise."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise UserInputError(
                f"Unknown parameter(s) {unknown} for augmentation policy "
                f"{self.name!r}; valid parameters: {sorted(self.defaults)}. "
                f"Received: {params}"
            )
        return {**self.defaults, **params}


def _base(images, seed, use_flip, max_offset, padding):
    seed_flip, seed_shift = split(seed, 2)
    if use_flip:
        images = flip(images, seed_flip)
    if max_offset:
        images = translate(images, seed_shift, max_offset, padding)
    return images


_BASE = {"flip": True, "max_offset": 0.125, "padding": "zero"}


def _none(images, labels, seed):
    return images, labels


def _flip_policy(images, labels, seed, vertical):
    return flip(images, seed, horizontal=True, vertical=vertical), labels


def _translate_policy(images, labels, seed, max_offset, padding):
    return translate(images, seed, max_offset, padding), labels


def _flip_translate(images, labels, seed, flip, max_offset, padding):
    return _base(images, seed, flip, max_offset, padding), labels


def _randaugment(images, labels, seed, flip, max_offset, padding, num_ops, magnitude):
    seed_base, seed_ra = split(seed, 2)
    images = _base(images, seed_base, flip, max_offset, padding)
    return rand_augment(images, seed_ra, num_ops, magnitude), labels


def _cutout(images, labels, seed, flip, max_offset, padding, size, fill_value):
    seed_base, seed_cut = split(seed, 2)
    images = _base(images, seed_base, flip, max_offset, padding)
    return cutout(images, seed_cut, size, fill_value), labels


def _erasing(images, labels, seed, flip, max_offset, padding, rate):
    seed_base, seed_erase = split(seed, 2)
    images = _base(images, seed_base, flip, max_offset, padding)
    return random_erasing(images, seed_erase, rate=rate), labels


def _mixup(images, labels, seed, flip, max_offset, padding, alpha):
    seed_base, seed_mix = split(seed, 2)
    images = _base(images, seed_base, flip, max_offset, padding)
    return mixup(images, labels, seed_mix, alpha)


def _cutmix(images, labels, seed, flip, max_offset, padding, alpha):
    seed_base, seed_mix = split(seed, 2)
    images = _base(images, seed_base, flip, max_offset, padding)
    return cutmix(images, labels, seed_mix, alpha)


_POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("none", _none, {}, "No augmentation."),
        Policy("flip", _flip_policy, {"vertical": False}, "Random horizontal flip."),
        Policy(
            "translate",
            _translate_policy,
            {"max_offset": 0.125, "padding": "zero"},
            "Random translation (pad, random crop).",
        ),
        Policy(
            "flip-translate",
            _flip_translate,
            dict(_BASE),
            "Horizontal flip + translation by up to 1/8 (the CIFAR baseline).",
        ),
        Policy(
            "flip-crop",
            _flip_translate,
            {**_BASE, "max_offset": 1 / 14},
            "Horizontal flip + translation by up to 1/14 (2 px at 28x28).",
        ),
        Policy(
            "randaugment",
            _randaugment,
            {**_BASE, "num_ops": 2, "magnitude": 0.5},
            "flip-translate, then RandAugment (N=2, M=0.5).",
        ),
        Policy(
            "cutout",
            _cutout,
            {**_BASE, "size": 0.5, "fill_value": 0.5},
            "flip-translate, then Cutout of half the side.",
        ),
        Policy(
            "erasing",
            _erasing,
            {**_BASE, "rate": 0.5},
            "flip-translate, then random erasing with noise.",
        ),
        Policy(
            "mixup",
            _mixup,
            {**_BASE, "alpha": 0.2},
            "flip-translate, then mixup (alpha 0.2); tf.data only.",
            mixes_labels=True,
        ),
        Policy(
            "cutmix",
            _cutmix,
            {**_BASE, "alpha": 1.0},
            "flip-translate, then CutMix (alpha 1.0); tf.data only.",
            mixes_labels=True,
        ),
    )
}


def list_policies() -> list[str]:
    """Names of the augmentation policies, e.g. for `--augment` or a tuner.

    Returns:
        A list of str, `"none"` first.
    """
    return list(_POLICIES)


def get_policy(name: str) -> Policy:
    """The `Policy` registered under `name`.

    Raises:
        UserInputError: for an unknown name, listing the valid ones.
    """
    if name not in _POLICIES:
        raise UserInputError(
            f"Unknown augmentation policy {name!r}; choose one of "
            f"{list_policies()}. Received: policy={name!r}"
        )
    return _POLICIES[name]


def augment_batch(images, labels, policy, seed, **params):
    """Applies a named policy to one batch: the code both placements share.

    Args:
        images: float tensor `[B, H, W, C]` in `[0, 1]`.
        labels: float one-hot tensor `[B, num_classes]`, or None for policies
            that do not mix labels.
        policy: str. A name from `list_policies()`.
        seed: int or `[2]` tensor. Stateless RNG seed of this batch.
        **params: overrides of the policy's parameters (e.g. `magnitude=0.7`).

    Returns:
        `(images, labels)`, augmented.

    Example:

    ```python
    x, y = augment_batch(x, y, "cutmix", seed=batch_seed(0, 0, 0), alpha=0.5)
    ```
    """
    spec = get_policy(policy)
    arguments = spec.resolve(params)
    if not images.dtype.is_floating:
        raise UserInputError(
            "Augmentation expects float images in [0, 1]. "
            f"Received: images dtype={images.dtype.name}"
        )
    return spec.fn(images, labels, make_seed(seed), **arguments)


_COMPILED: dict = {}


def _compiled(policy, arguments, jit_compile):
    """One `tf.function` per (policy, parameters), so XLA compiles it once.

    Pipelines rebuilt every epoch (`epoch=e`) or for validation reuse it
    instead of paying the compilation again.
    """
    key = (policy, repr(sorted(arguments.items())), bool(jit_compile))
    if key not in _COMPILED:
        fn = _POLICIES[policy].fn

        @tf.function(jit_compile=jit_compile)
        def apply(images, labels, seed):
            return fn(images, labels, seed, **arguments)

        _COMPILED[key] = apply
    return _COMPILED[key]


def augment_dataset(ds, policy, *, seed, epoch=None, jit_compile=True, **params):
    """Augments a batched `tf.data.Dataset` of `(images, labels)`.

    Maps one (XLA-compiled) call per batch, after `batch`, with
    `num_parallel_calls=AUTOTUNE`. Each batch gets its own stateless seed,
    `batch_seed(seed, epoch, index)`:

    - `epoch=None` (default): the epoch is how many times this dataset has
      been iterated, so `model.fit(ds, epochs=E)` sees different draws every
      epoch while two runs with the same `seed` see the same ones. (The count
      comes from `tf.data.Dataset.random(rerandomize_each_iteration=True)`,
      which also depends on TensorFlow's global seed, as set by
      `keras.utils.set_random_seed`.)
    - `epoch=e` (an int): draws are a pure function of `(seed, e, index)`,
      identical on every iteration; for pipelines rebuilt per epoch.

    Args:
        ds: `tf.data.Dataset` of batches `(images, labels, ...)`: float32
            images `[B, H, W, C]` in `[0, 1]` and float one-hot labels
            `[B, num_classes]`; further elements (sample weights) pass
            through. A dataset of images alone works for policies that do not
            mix labels.
        policy: str. A name from `list_policies()`.
        seed: int. Augmentation seed.
        epoch: int or None. See above. Defaults to None.
        jit_compile: bool. Compile the per-batch function with XLA. Defaults
            to True.
        **params: overrides of the policy's parameters.

    Returns:
        A `tf.data.Dataset` with the same structure and cardinality.

    Raises:
        UserInputError: unknown policy or parameter, non-float images, or a
            label-mixing policy without float labels.

    Example:

    ```python
    train = ds.shuffle(10_000).batch(256)
    train = augment_dataset(train, "randaugment", seed=0, magnitude=0.3)
    train = train.prefetch(tf.data.AUTOTUNE)
    ```
    """
    spec = get_policy(policy)
    arguments = spec.resolve(params)
    if policy == "none":
        return ds
    element = ds.element_spec
    has_labels = isinstance(element, tuple)
    images_spec = element[0] if has_labels else element
    if not images_spec.dtype.is_floating:
        raise UserInputError(
            "Augmentation expects float images in [0, 1]. "
            f"Received: images dtype={images_spec.dtype.name}"
        )
    if spec.mixes_labels and (
        not has_labels or len(element) < 2 or not element[1].dtype.is_floating
    ):
        raise UserInputError(
            f"Augmentation {policy!r} mixes labels, so the dataset must yield "
            "(images, one-hot float labels). "
            f"Received: element_spec={element}"
        )

    apply = _compiled(policy, arguments, jit_compile)
    base = make_seed(seed)

    if epoch is None:
        counters = tf.data.Dataset.zip(
            tf.data.Dataset.counter(),
            tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True),
        )

        def key_of(index, draw):
            return batch_seed(base, tf.cast(draw, tf.int32), index)

    else:
        counters = tf.data.Dataset.counter()

        def key_of(index):
            return batch_seed(base, epoch, index)

    def augment(element, counter):
        key = key_of(*counter) if isinstance(counter, tuple) else key_of(counter)
        if not has_labels:
            images, _ = apply(element, None, key)
            return images
        labels = element[1] if spec.mixes_labels else None
        images, mixed = apply(element[0], labels, key)
        if spec.mixes_labels:
            return (images, mixed, *element[2:])
        return (images, *element[1:])

    zipped = tf.data.Dataset.zip(ds, counters)
    return zipped.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
