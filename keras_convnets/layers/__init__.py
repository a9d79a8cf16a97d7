"""Layers Keras lacks: outer-product conv, locally connected, LP/median pooling, flip,
and the training-only augmentation layer.

Importing this package registers every layer with
`keras.saving.register_keras_serializable(package="keras_convnets")`, so models
built from them load from `.keras` files without `custom_objects`.
"""

from keras_convnets.layers.augment import Augment
from keras_convnets.layers.flip import Flip
from keras_convnets.layers.locally_connected import LocallyConnected2D
from keras_convnets.layers.outer_product import OuterProductConv2D
from keras_convnets.layers.pooling import L2Pooling2D, LPPooling2D, MedianPooling2D

__all__ = [
    "Augment",
    "Flip",
    "L2Pooling2D",
    "LPPooling2D",
    "LocallyConnected2D",
    "MedianPooling2D",
    "OuterProductConv2D",
]
