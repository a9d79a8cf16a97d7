"""Tests of keras_convnets.formulas against layers Keras actually builds."""

import itertools
import warnings

import keras
import pytest

import keras_convnets
from keras_convnets.errors import UserInputError
from keras_convnets.formulas import conv_output_shape, conv_output_size, conv_params

CASES = [
    (n, f, p, s)
    for n, f, p, s in itertools.product(
        (1, 5, 7, 28, 32, 40), (1, 2, 3, 5, 11), (0, 1, 2, 3), (1, 2, 3, 4)
    )
    if n + 2 * p >= f
]


@pytest.mark.parametrize("n, f, p, s", CASES)
def test_conv_output_size_matches_keras(n, f, p, s):
    expected = keras.layers.Conv2D(1, f, strides=s).compute_output_shape(
        (1, n + 2 * p, n + 2 * p, 3)
    )[1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert conv_output_size(n, f, p, s) == expected
    assert bool(caught) == bool((n + 2 * p - f) % s)


@pytest.mark.parametrize(
    "n, f, s", itertools.product((1, 5, 28, 33), (1, 3, 4), (1, 2, 3))
)
def test_same_and_valid_padding_match_keras(n, f, s):
    for padding in ("same", "valid"):
        if padding == "valid" and n < f:
            continue
        layer = keras.layers.Conv2D(1, f, strides=s, padding=padding)
        expected = layer.compute_output_shape((1, n, n, 2))[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert conv_output_size(n, f, padding, s) == expected


def test_conv_output_size_on_a_real_layer_run():
    x = keras.ops.ones((1, 32, 32, 3))
    y = keras.layers.Conv2D(10, 5, strides=2)(keras.layers.ZeroPadding2D(2)(x))
    with pytest.warns(UserWarning, match="never reached"):
        shape = conv_output_shape((32, 32, 3), 10, 5, padding=2, stride=2)
    assert shape == tuple(y.shape[1:])


def test_lecture_examples():
    # Part 2: a 32x32x3 image, 10 filters of 5x5x3.
    assert conv_output_shape((32, 32, 3), 10, 5, padding=2, stride=1) == (32, 32, 10)
    assert conv_output_shape((32, 32, 3), 10, 5, padding=0, stride=1) == (28, 28, 10)
    # (32 + 4 - 5) / 2 is not whole: the lecture's 16 is the floor, with a warning.
    with pytest.warns(UserWarning, match="never reached"):
        assert conv_output_shape((32, 32, 3), 10, 5, padding=2, stride=2) == (
            16,
            16,
            10,
        )
    assert conv_output_shape((32, 32, 3), 24, 5, padding=2) == (32, 32, 24)
    with pytest.warns(UserWarning, match="never reached"):
        assert conv_output_size(32, 5, 0, 2) == 14
    # Part 3: Illing's net on 40x40.
    with pytest.warns(UserWarning, match="never reached"):
        assert conv_output_size(40, 3, 0, 2) == 19
    assert conv_output_size(19, 2, 0, 1) == 18
    # Quiz: 10 filters of 5x5x3 hold 750 weights (without biases).
    assert conv_params(5, 3, 10, use_bias=False) == 750


def test_non_square_shapes():
    with pytest.warns(UserWarning, match="stride=2"):  # (40 - 5) is odd
        shape = conv_output_shape((28, 40, 1), 8, (3, 5), padding=(1, 0), stride=(1, 2))
    assert shape == (28, 18, 8)
    assert conv_output_shape((28, 40, 1), 8, 3, padding="same", stride=2) == (14, 20, 8)


@pytest.mark.parametrize(
    "kernel, c, k, bias",
    [(1, 1, 1, True), (3, 3, 64, True), (5, 100, 7, False), ((1, 7), 16, 32, True)],
)
def test_conv_params_matches_keras(kernel, c, k, bias):
    layer = keras.layers.Conv2D(k, kernel, use_bias=bias)
    layer.build((None, 9, 9, c))
    assert conv_params(kernel, c, k, use_bias=bias) == layer.count_params()


def test_bad_inputs_raise_user_errors():
    with pytest.raises(UserInputError, match="Received: n=3, f=5"):
        conv_output_size(3, 5, 0, 1)
    with pytest.raises(UserInputError, match="padding='full'"):
        conv_output_size(8, 3, "full", 1)
    with pytest.raises(UserInputError, match="stride=0"):
        conv_output_size(8, 3, 0, 0)
    with pytest.raises(UserInputError, match="input_shape"):
        conv_output_shape((8, 8), 4, 3)
    with pytest.raises(UserInputError, match="filters=0"):
        conv_params(3, 3, 0)


def test_reexported_at_top_level():
    assert keras_convnets.conv_output_size is conv_output_size
    assert keras_convnets.conv_params is conv_params
