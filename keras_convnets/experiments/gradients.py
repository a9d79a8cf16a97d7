"""`gradients`: the lecture's exercise, dL/dw by hand vs GradientTape vs autodiff.

The network of lecture parts 4-5: an RGB image I, K convolution filters of
5x5x3 at stride 1, a nonlinearity sigma (tanh), optionally a 2x2 max-pool at
stride 1, and a linear readout to O outputs with quadratic loss:

    a_ijk   = b_k + sum_{x,y,c} I_{i+x-1, j+y-1, c} w_xyck
    x_ijk   = sigma(a_ijk)
    xout_ij = max{x_ij, x_i+1,j, x_i,j+1, x_i+1,j+1}        (with pooling)
    yhat_o  = sum_ijk w2_ijko xout_ijk
    L       = 1/2 sum_o (t_o - yhat_o)^2

`hand_gradient` writes dL/dw out in code -- the error at the readout, the
routing through the max-pool arg-max, sigma', and the sum over positions that
weight sharing brings. It is compared with `tf.GradientTape` and with the NumPy
tracker `keras_convnets.autodiff`, for the weight w_1135 the lecture asks about
(0-based [0, 0, 2, 4]) and for every weight of random networks.
"""

from __future__ import annotations

import numpy as np

from keras_convnets import autodiff as ad
from keras_convnets.experiments.common import (
    experiment_dir,
    markdown_table,
    pyplot,
    save_figure,
    write_results,
    write_summary,
)

NAME = "gradients"
LECTURE_WEIGHT = (1, 1, 3, 5)  # w_{1135}: x=1, y=1, channel 3, filter 5 (1-based)


def make_problem(rng, size=12, filters=6, outputs=3, pool=True):
    """A random instance of the exercise: image, weights, targets (float64)."""
    conv_out = size - 4
    readout = conv_out - 1 if pool else conv_out
    return {
        "image": rng.uniform(0.0, 1.0, (size, size, 3)),
        "w1": rng.normal(0.0, 0.3, (5, 5, 3, filters)),
        "b1": rng.normal(0.0, 0.1, (filters,)),
        "w2": rng.normal(0.0, 0.3, (readout, readout, filters, outputs)),
        "target": rng.normal(0.0, 1.0, (outputs,)),
        "pool": pool,
    }


def forward(p):
    """The forward pass in NumPy; returns the intermediate values by name."""
    image, w1 = p["image"], p["w1"]
    size, kh = image.shape[0], w1.shape[0]
    n = size - kh + 1
    a = np.empty((n, n, w1.shape[3]))
    for i in range(n):
        for j in range(n):
            patch = image[i : i + kh, j : j + kh, :]
            a[i, j] = p["b1"] + np.tensordot(patch, w1, axes=3)
    x = np.tanh(a)
    if p["pool"]:
        xout = np.maximum.reduce([x[:-1, :-1], x[:-1, 1:], x[1:, :-1], x[1:, 1:]])
    else:
        xout = x
    yhat = np.tensordot(xout, p["w2"], axes=3)
    loss = 0.5 * np.sum((p["target"] - yhat) ** 2)
    return {"a": a, "x": x, "xout": xout, "yhat": yhat, "loss": loss}


def hand_gradient(p):
    """dL/dw1 derived by hand, step by step (see the module docstring).

    Returns:
        (grad of shape w1.shape, winners): `winners[i, j, k]` is the (i*, j*)
        position of x that won the max-pool window at (i, j) (None without
        pooling) -- where the gradient is routed.
    """
    f = forward(p)
    error = f["yhat"] - p["target"]  # dL/dyhat_o = yhat_o - t_o
    delta_out = np.tensordot(p["w2"], error, axes=([3], [0]))  # dL/dxout_ijk
    winners = None
    if p["pool"]:
        # Max pooling: only the arg-max (i*, j*) of each 2x2 window gets the
        # window's gradient; a position winning several windows sums them.
        x = f["x"]
        delta_x = np.zeros_like(x)
        n, k_count = delta_out.shape[0], delta_out.shape[2]
        winners = np.zeros((n, n, k_count, 2), dtype=int)
        offsets = ((0, 0), (0, 1), (1, 0), (1, 1))  # row-major, first wins ties
        for i in range(n):
            for j in range(n):
                for k in range(k_count):
                    values = [x[i + dy, j + dx, k] for dy, dx in offsets]
                    dy, dx = offsets[int(np.argmax(values))]
                    delta_x[i + dy, j + dx, k] += delta_out[i, j, k]
                    winners[i, j, k] = (i + dy, j + dx)
    else:
        delta_x = delta_out
    delta_a = delta_x * (1.0 - f["x"] ** 2)  # sigma = tanh, sigma' = 1 - tanh^2
    # Weight sharing: w_xyck is used at every (i, j), so its gradient sums
    # delta_a_ijk * I_{i+x, j+y, c} over all positions.
    kh = p["w1"].shape[0]
    n = delta_a.shape[0]
    grad = np.zeros_like(p["w1"])
    for x in range(kh):
        for y in range(kh):
            window = p["image"][x : x + n, y : y + n, :]  # I_{i+x, j+y, c}
            grad[x, y] = np.einsum("ijc,ijk->ck", window, delta_a)
    return grad, winners


def tape_gradient(p):
    """dL/dw1 from `tf.GradientTape` with TensorFlow's own ops, in float64."""
    import tensorflow as tf

    image = tf.constant(p["image"][None], tf.float64)
    w1 = tf.Variable(p["w1"], dtype=tf.float64)
    with tf.GradientTape() as tape:
        a = tf.nn.conv2d(image, w1, strides=1, padding="VALID") + p["b1"]
        x = tf.tanh(a)
        if p["pool"]:
            x = tf.nn.max_pool2d(x, ksize=2, strides=1, padding="VALID")
        yhat = tf.tensordot(x[0], tf.constant(p["w2"], tf.float64), axes=3)
        loss = 0.5 * tf.reduce_sum((p["target"] - yhat) ** 2)
    return tape.gradient(loss, w1).numpy()


def autodiff_gradient(p, return_tracker=False):
    """dL/dw1 from the NumPy tracker `keras_convnets.autodiff`."""
    t = ad.Tracker()
    w1 = t.variable(p["w1"], "w1")
    b1 = t.variable(p["b1"], "b1")
    w2 = t.variable(p["w2"], "w2")
    a = ad.conv2d(t.constant(p["image"], "I"), w1, b1, name="a")
    x = ad.tanh(a, name="x")
    if p["pool"]:
        x = ad.max_pool2d(x, 2, 1, name="xout")
    yhat = ad.tensordot(x, w2, axes=3, name="yhat")
    diff = ad.add(yhat, -t.constant(p["target"], "t"), name="err")
    loss = ad.mul(0.5, ad.sum(ad.square(diff), name="sse"), name="L")
    (grad,) = t.gradient(loss, [w1])
    return (grad, t, loss) if return_tracker else grad


def run(out_dir, quick=False, seed=0, data_dir=None) -> dict:
    """Compares the three gradients; writes results.json, gradients.png, summary.md.

    Args:
        out_dir: str. Results land in OUT_DIR/gradients.
        quick: bool. Fewer random networks (3 instead of 20).
        seed: int. Seeds the random networks.
        data_dir: unused (no data set needed).

    Returns:
        The results dict, with `max_abs_error` the largest absolute difference
        between any two of the three gradients over every case.
    """
    del data_dir
    directory = experiment_dir(out_dir, NAME)
    rng = np.random.default_rng(seed)
    trials = 3 if quick else 20
    index = tuple(i - 1 for i in LECTURE_WEIGHT)
    cases, scatter = [], {}
    for pool in (False, True):
        for trial in range(trials):
            p = make_problem(rng, pool=pool)
            hand, winners = hand_gradient(p)
            tape = tape_gradient(p)
            auto = autodiff_gradient(p)
            err_tape = float(np.max(np.abs(hand - tape)))
            err_auto = float(np.max(np.abs(hand - auto)))
            err_auto_tape = float(np.max(np.abs(auto - tape)))
            cases.append(
                {
                    "pool": pool,
                    "trial": trial,
                    "w_1135": {
                        "hand": float(hand[index]),
                        "tape": float(tape[index]),
                        "autodiff": float(auto[index]),
                    },
                    "max_abs_error_hand_vs_tape": err_tape,
                    "max_abs_error_hand_vs_autodiff": err_auto,
                    "max_abs_error_autodiff_vs_tape": err_auto_tape,
                    "max_abs_gradient": float(np.max(np.abs(tape))),
                }
            )
            if trial == 0:
                scatter[pool] = (hand.ravel(), tape.ravel(), p, winners)
    max_err = max(
        max(
            c["max_abs_error_hand_vs_tape"],
            c["max_abs_error_hand_vs_autodiff"],
            c["max_abs_error_autodiff_vs_tape"],
        )
        for c in cases
    )
    _, tracker, loss = autodiff_gradient(scatter[True][2], return_tracker=True)
    w1_node = next(n for n in tracker.nodes if n.name == "w1")
    example = ad.Tracker()
    wa, wb = example.variable(0.7, "w_a"), example.variable(-1.3, "w_b")
    f = ad.lecture_example(wa, wb)
    dwa, dwb = example.gradient(f, [wa, wb])
    hand_dwa, hand_dwb = ad.lecture_example_gradient(0.7, -1.3)
    results = {
        "experiment": NAME,
        "quick": quick,
        "seed": seed,
        "weight": "w[1,1,3,5] (1-based: x=1, y=1, channel 3, filter 5)",
        "trials_per_variant": trials,
        "max_abs_error": max_err,
        "agree_to_1e-5": bool(max_err < 1e-5),
        "cases": cases,
        "autodiff_schedule": tracker.format_schedule(loss).splitlines(),
        "w1_children": [c.name for c in tracker.children(w1_node, loss)],
        "lecture_example": {
            "w_a": 0.7,
            "w_b": -1.3,
            "w_a_children": [c.name for c in example.children(wa, f)],
            "autodiff": [float(dwa), float(dwb)],
            "hand": [hand_dwa, hand_dwb],
            "schedule": example.format_schedule(f).splitlines(),
        },
    }
    write_results(directory, results)
    _plot(directory, scatter)
    _summary(directory, results)
    return results


def _plot(directory, scatter):
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, pool in zip(axes[:2], (False, True)):
        hand, tape, _, _ = scatter[pool]
        ax.scatter(tape, hand, s=4)
        lim = float(np.max(np.abs(tape))) * 1.05
        ax.plot([-lim, lim], [-lim, lim], "k--", lw=0.8)
        ax.set_xlabel("tf.GradientTape dL/dw")
        ax.set_ylabel("hand-derived dL/dw")
        ax.set_title(f"{'with' if pool else 'without'} 2x2 max-pool (stride 1)")
    _, _, p, winners = scatter[True]
    k = LECTURE_WEIGHT[3] - 1
    n = p["w1"].shape[0]
    counts = np.zeros((p["image"].shape[0] - n + 1,) * 2)
    for i, j in winners[:, :, k].reshape(-1, 2):
        counts[i, j] += 1
    im = axes[2].imshow(counts, cmap="viridis")
    fig.colorbar(im, ax=axes[2])
    axes[2].set_title(f"max-pool routing, filter {k + 1}:\nwindows won per position")
    save_figure(fig, f"{directory}/gradients.png")


def _summary(directory, r):
    rows = [
        [
            "yes" if c["pool"] else "no",
            c["trial"],
            c["w_1135"]["hand"],
            c["w_1135"]["tape"],
            f"{c['max_abs_error_hand_vs_tape']:.2e}",
            f"{c['max_abs_error_autodiff_vs_tape']:.2e}",
        ]
        for c in r["cases"]
    ]
    ex = r["lecture_example"]
    text = f"""# gradients: dL/dw by hand, by GradientTape, by autodiff

The exercise of lecture parts 4-5: 5x5x3 convolution (6 filters, stride 1),
tanh, optional 2x2 max-pool at stride 1, linear readout, quadratic loss, on
random 12x12x3 images (float64). `hand` follows the derivation in
`keras_convnets/experiments/gradients.py` (error at the readout, routed to the
arg-max of each pooling window, times sigma', summed over all positions because
the weight is shared).

**Largest absolute difference between any two methods, every weight, every
case: {r["max_abs_error"]:.2e}** ({"agree" if r["agree_to_1e-5"] else "DISAGREE"}
to 1e-5).

{markdown_table(["max-pool", "trial", "dL/dw_1135 hand", "dL/dw_1135 tape", "max err hand-tape", "max err autodiff-tape"], rows)}

The lecture's f(w_a, w_b) = g[h(k(w_a), w_a), m(w_a), w_a, w_b]: w_a has
{len(ex["w_a_children"])} children ({", ".join(ex["w_a_children"])}); autodiff
df/dw_a = {ex["autodiff"][0]:.6f}, by hand {ex["hand"][0]:.6f}. Reverse schedule:

```
{chr(10).join(ex["schedule"])}
```

`gradients.png`: hand vs tape for every weight, with and without pooling, and
how many pooling windows each conv position wins for filter 5 (the gradient
flows only to winners).
"""
    write_summary(directory, text)
