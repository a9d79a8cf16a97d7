"""Data: datasets as tf.data pipelines (datasets.py) and augmentation (augment/).

The `Augment` model layer lives in `keras_convnets.layers` (importing that
package registers it for `.keras` loading); `keras_convnets.data.Augment`
stays as an alias, resolved on first use so that importing data/ never
imports layers/.
"""

from keras_convnets.data.augment import augment_dataset, list_policies
from keras_convnets.data.datasets import DatasetInfo, load_dataset

__all__ = ["Augment", "DatasetInfo", "augment_dataset", "list_policies", "load_dataset"]


def __getattr__(name):
    if name == "Augment":
        from keras_convnets.layers.augment import Augment

        return Augment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
