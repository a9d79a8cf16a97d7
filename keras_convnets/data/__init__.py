"""Data: datasets as tf.data pipelines (datasets.py) and augmentation (augment.py)."""

from keras_convnets.data.datasets import DatasetInfo, load_dataset

__all__ = ["DatasetInfo", "load_dataset"]
