"""Batched, seeded image augmentation that compiles under XLA.

Data augmentation is one of the three routes to an inductive bias (lecture
part 1): it tells the model which changes of the input leave the label alone.
Here it must be cheap enough never to be the bottleneck, so every operation is
a batched TensorFlow op on a whole `[batch, height, width, channels]` tensor:

- per-image randomness comes from `tf.random.stateless_*` with an explicit
  seed (a `[2]` integer tensor), so the same seed always gives the same batch;
- geometry is built from gathers (no `ImageProjectiveTransformV3`, which has no
  XLA kernel), colour from elementwise ops and one segment sum (equalize), so
  every op and policy compiles with `tf.function(jit_compile=True)`;
- images are float in `[0, 1]` (1 or 3 channels) and stay in `[0, 1]`.

The same code runs in two placements:

1. `augment_dataset(ds, policy, seed=...)`: in `tf.data`, mapped after
   `batch`, one XLA-compiled call per batch. All policies, including `mixup`
   and `cutmix`, which also mix the (one-hot) labels.
2. `keras_convnets.layers.Augment(policy, seed)`: a training-only layer at
   the model input, so `model.fit(..., jit_compile=True)` fuses augmentation
   into the train step on the accelerator. Identity at inference. Image-only
   policies (a layer never sees the labels, so `mixup` and `cutmix` are
   refused there).

Policies are named (`list_policies()`) so that `keras-convnets train --augment
NAME` and the tuner (`hp.Choice("augment", list_policies())`) can pick them.

The package, one module per concern:

- `random`: seeds (`make_seed`, `batch_seed`) and the portable draws;
- `geometry`: `shift`, `translate`, `canvas_place`, `flip`,
  `affine_transform`, `rotate`, `shear`;
- `colour`: `brightness`, `contrast`, `solarize`, `posterize`,
  `autocontrast`, `equalize`;
- `mixing`: `cutout`, `random_erasing`, `mixup`, `cutmix`;
- `randaugment`: `rand_augment`;
- `policies`: `Policy`, `list_policies`, `get_policy`, `augment_batch`,
  `augment_dataset`.

Every public name is re-exported here, so `from keras_convnets.data.augment
import translate` keeps working.
"""

from keras_convnets.data.augment.colour import (
    autocontrast,
    brightness,
    contrast,
    equalize,
    posterize,
    solarize,
)
from keras_convnets.data.augment.geometry import (
    affine_transform,
    canvas_place,
    flip,
    rotate,
    shear,
    shift,
    translate,
)
from keras_convnets.data.augment.mixing import cutmix, cutout, mixup, random_erasing
from keras_convnets.data.augment.policies import (
    Policy,
    augment_batch,
    augment_dataset,
    get_policy,
    list_policies,
)
from keras_convnets.data.augment.randaugment import rand_augment
from keras_convnets.data.augment.random import batch_seed, make_seed

__all__ = [
    "Augment",
    "Policy",
    "affine_transform",
    "augment_batch",
    "augment_dataset",
    "autocontrast",
    "batch_seed",
    "brightness",
    "canvas_place",
    "contrast",
    "cutmix",
    "cutout",
    "equalize",
    "flip",
    "get_policy",
    "list_policies",
    "make_seed",
    "mixup",
    "posterize",
    "rand_augment",
    "random_erasing",
    "rotate",
    "shear",
    "shift",
    "solarize",
    "translate",
]


def __getattr__(name):
    # The `Augment` layer lives in `keras_convnets.layers` (layers sit above
    # data: layers.augment imports the policies from here). This alias keeps
    # `from keras_convnets.data.augment import Augment` working without data/
    # importing layers/ when it is itself imported (that would be a cycle).
    if name == "Augment":
        from keras_convnets.layers.augment import Augment

        return Augment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
