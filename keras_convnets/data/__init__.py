"""Data: datasets as tf.data pipelines (datasets.py) and augmentation (augment.py).

Importing it registers the `Augment` layer, so `.keras` models holding it load
without `custom_objects`.
"""

from keras_convnets.data.augment import Augment, augment_dataset, list_policies
from keras_convnets.data.datasets import DatasetInfo, load_dataset

__all__ = ["Augment", "DatasetInfo", "augment_dataset", "list_policies", "load_dataset"]
