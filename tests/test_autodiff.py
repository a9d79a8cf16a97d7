"""keras_convnets.autodiff: the NumPy reverse-mode tracker against TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_convnets import autodiff as ad


def test_lecture_example_four_children_and_hand_gradient():
    t = ad.Tracker()
    wa, wb = t.variable(0.4, "w_a"), t.variable(1.7, "w_b")
    f = ad.lecture_example(wa, wb)
    dwa, dwb = t.gradient(f, [wa, wb])
    assert [c.name for c in t.children(wa, f)] == ["k", "h", "m", "g_ab"]
    hand_a, hand_b = ad.lecture_example_gradient(0.4, 1.7)
    np.testing.assert_allclose([dwa, dwb], [hand_a, hand_b], rtol=1e-12)
    # A backward schedule: every node comes after all of its children.
    schedule = t.schedule(f)
    position = {id(n): i for i, n in enumerate(schedule)}
    for node in schedule:
        for child in t.children(node, f):
            assert position[id(child)] < position[id(node)]
    assert schedule[0] is f and schedule[-1].name in ("w_a", "w_b")
    text = t.format_schedule(f)
    assert "w_a" in text and "children: k, h, m, g_ab" in text


def test_matches_gradient_tape_on_conv_pool_readout(rng):
    image = rng.uniform(size=(9, 9, 3))
    w1 = rng.normal(size=(3, 3, 3, 4))
    b1 = rng.normal(size=(4,))
    w2 = rng.normal(size=(6, 6, 4, 2))
    t = ad.Tracker()
    nw1, nb1, nw2 = t.variable(w1), t.variable(b1), t.variable(w2)
    img = t.variable(image)
    x = ad.max_pool2d(ad.sigmoid(ad.conv2d(img, nw1, nb1)), 2, 1)
    loss = ad.sum(ad.square(ad.tensordot(x, nw2, 3)))
    grads = t.gradient(loss, [img, nw1, nb1, nw2])

    tv = [tf.Variable(v, dtype=tf.float64) for v in (image, w1, b1, w2)]
    with tf.GradientTape() as tape:
        a = tf.nn.conv2d(tv[0][None], tv[1], 1, "VALID") + tv[2]
        xt = tf.nn.max_pool2d(tf.sigmoid(a), 2, 1, "VALID")[0]
        lt = tf.reduce_sum(tf.tensordot(xt, tv[3], 3) ** 2)
    expected = tape.gradient(lt, tv)
    np.testing.assert_allclose(loss.value, lt.numpy(), rtol=1e-12)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-10)


def test_max_pool_stride2_and_relu_match_tape(rng):
    v = rng.normal(size=(6, 6, 2))
    t = ad.Tracker()
    x = t.variable(v)
    y = ad.sum(
        ad.mul(ad.max_pool2d(ad.relu(x), 2, 2), np.arange(18.0).reshape(3, 3, 2))
    )
    (g,) = t.gradient(y, [x])
    xv = tf.Variable(v)
    with tf.GradientTape() as tape:
        pooled = tf.nn.max_pool2d(tf.nn.relu(xv)[None], 2, 2, "VALID")[0]
        yt = tf.reduce_sum(pooled * np.arange(18.0).reshape(3, 3, 2))
    np.testing.assert_allclose(g, tape.gradient(yt, xv).numpy(), atol=1e-12)


def test_shared_use_sums_children_and_broadcast():
    t = ad.Tracker()
    x = t.variable(np.array([1.0, 2.0, 3.0]))
    s = t.variable(2.0)
    y = ad.sum(x * x + s * x - 1.0)  # x used twice by one child
    gx, gs = t.gradient(y, [x, s])
    np.testing.assert_allclose(gx, 2 * x.value + 2.0)
    np.testing.assert_allclose(gs, x.value.sum())
    assert [c.op for c in t.children(x)].count("mul") == 3


def test_unused_variable_gets_zero_and_bad_arguments_raise():
    t = ad.Tracker()
    a, b = t.variable(1.0), t.variable(np.ones(2))
    (gb,) = t.gradient(ad.exp(a), [b])
    np.testing.assert_array_equal(gb, np.zeros(2))
    with pytest.raises(ValueError, match="Received: image shape"):
        ad.conv2d(t.constant(np.ones((5, 5, 2))), t.variable(np.ones((3, 3, 3, 1))))
    with pytest.raises(ValueError, match="Received: size=0"):
        ad.max_pool2d(t.variable(np.ones((4, 4, 1))), 0)
    with pytest.raises(ValueError, match="must be a Node"):
        ad.add(1.0, 2.0)
