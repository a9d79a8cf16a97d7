"""Reverse-mode automatic differentiation in NumPy, made visible (lecture part 5).

A `Tracker` records the computation graph on the forward pass: every
primitive creates a `Node` that remembers its parents and, per parent, the
local chain-rule factor (a vector-Jacobian product). `Tracker.gradient` then
walks a reverse schedule -- every node after all of its children -- and sums,
for each node, the contributions of its children. That is all backprop is;
weight sharing (one weight, many children) and max pooling (the gradient is
routed to the arg-max) need nothing special.

A teaching and checking tool: the `gradients` experiment compares it with
`tf.GradientTape`. It is never on the training path.

Example (the lecture's f(w_a, w_b) = g[h(k(w_a), w_a), m(w_a), w_a, w_b]):

```python
from keras_convnets import autodiff as ad

t = ad.Tracker()
wa, wb = t.variable(0.5, "w_a"), t.variable(2.0, "w_b")
f = ad.lecture_example(wa, wb)
dwa, dwb = t.gradient(f, [wa, wb])
print(t.format_schedule(f))  # w_a has 4 children
```

Reference:
    Baydin et al., Automatic differentiation in machine learning: a survey,
    JMLR 2018.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "Node",
    "Tracker",
    "conv2d",
    "exp",
    "lecture_example",
    "max_pool2d",
    "relu",
    "sigmoid",
    "sin",
    "square",
    "sum",
    "tanh",
    "tensordot",
]


class Node:
    """A value in the recorded graph.

    Attributes:
        value: np.ndarray. The forward value.
        op: str. The primitive that made it ("variable", "mul", "conv2d", ...).
        name: str. A readable name, unique within its tracker.
        parents: tuple of Node. Inputs of the primitive that are nodes.
        vjps: tuple of callables. `vjps[i](g)` maps the gradient with respect
            to this node to the contribution for `parents[i]`.
    """

    def __init__(self, tracker, value, op, name, parents=(), vjps=()):
        self.tracker = tracker
        self.value = np.asarray(value, dtype=np.float64)
        self.op = op
        self.name = name
        self.parents = tuple(parents)
        self.vjps = tuple(vjps)

    @property
    def shape(self):
        return self.value.shape

    def __repr__(self):
        return f"Node({self.name}, op={self.op}, shape={self.value.shape})"

    def __add__(self, other):
        return add(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        return add(self, -_as_node(self.tracker, other))

    def __rsub__(self, other):
        return add(_as_node(self.tracker, other), -self)

    def __mul__(self, other):
        return mul(self, other)

    __rmul__ = __mul__

    def __neg__(self):
        return _unary(self, "neg", -self.value, lambda g: -g)


def _unbroadcast(grad, shape):
    """Sums `grad` down to `shape` (the inverse of NumPy broadcasting)."""
    grad = np.asarray(grad, dtype=np.float64)
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


class Tracker:
    """Records nodes in creation order and runs the chain rule backwards.

    Creation order is a forward (ancestral) schedule: parents come before
    children. Its reverse restricted to the ancestors of the output is a valid
    backward schedule: all children before the node itself.
    """

    def __init__(self):
        self.nodes: list[Node] = []

    def variable(self, value, name: str | None = None) -> Node:
        """A leaf to differentiate with respect to (a weight or an input)."""
        return self._record(value, "variable", name)

    def constant(self, value, name: str | None = None) -> Node:
        """A leaf that is never differentiated (data, targets)."""
        return self._record(value, "constant", name)

    def _record(self, value, op, name=None, parents=(), vjps=()) -> Node:
        name = name or f"{op}{len(self.nodes)}"
        node = Node(self, value, op, name, parents, vjps)
        self.nodes.append(node)
        return node

    def ancestors(self, output: Node) -> set[int]:
        """Ids of the nodes the output depends on, itself included."""
        seen, stack = set(), [output]
        while stack:
            node = stack.pop()
            if id(node) not in seen:
                seen.add(id(node))
                stack.extend(node.parents)
        return seen

    def schedule(self, output: Node) -> list[Node]:
        """The backward schedule of `output`: every node after all its children."""
        keep = self.ancestors(output)
        return [n for n in reversed(self.nodes) if id(n) in keep]

    def children(self, node: Node, output: Node | None = None) -> list[Node]:
        """Nodes that use `node` as an input (within `output`'s graph if given).

        A node used twice by the same child (x * x) lists that child twice: the
        chain rule has one term per use.
        """
        keep = self.ancestors(output) if output is not None else None
        return [
            c
            for c in self.nodes
            for p in c.parents
            if p is node and (keep is None or id(c) in keep)
        ]

    def gradient(self, output: Node, wrt: Sequence[Node]) -> list[np.ndarray]:
        """d(sum of output)/d(each of wrt), by reverse-mode accumulation.

        Args:
            output: Node. Usually a scalar loss; a tensor is summed.
            wrt: sequence of Node. Leaves (or any nodes) to differentiate.

        Returns:
            A list of arrays shaped like each `wrt` node (zeros where the
            output does not depend on it).
        """
        grads = {id(output): np.ones_like(output.value)}
        for node in self.schedule(output):
            g = grads.get(id(node))
            if g is None:
                continue
            for parent, vjp in zip(node.parents, node.vjps):
                contribution = _unbroadcast(vjp(g), parent.shape)
                # Sum over children: the chain rule's summation.
                grads[id(parent)] = grads.get(id(parent), 0.0) + contribution
        return [np.asarray(grads.get(id(w), np.zeros_like(w.value))) for w in wrt]

    def format_schedule(self, output: Node) -> str:
        """The backward schedule as text, one node a line with its children."""
        lines = []
        for step, node in enumerate(self.schedule(output)):
            kids = ", ".join(c.name for c in self.children(node, output)) or "-"
            shape = "x".join(map(str, node.shape)) or "scalar"
            lines.append(
                f"{step:>3}  {node.name:<12} {node.op:<9} {shape:<10} children: {kids}"
            )
        return "\n".join(lines)


def _as_node(tracker, x) -> Node:
    return x if isinstance(x, Node) else tracker.constant(x)


def _tracker_of(*xs) -> Tracker:
    for x in xs:
        if isinstance(x, Node):
            return x.tracker
    raise ValueError(f"At least one argument must be a Node. Received: {xs!r}")


def _unary(x: Node, op, value, vjp, name=None) -> Node:
    return x.tracker._record(value, op, name, (x,), (vjp,))


def add(a, b, name: str | None = None) -> Node:
    """a + b (with NumPy broadcasting)."""
    t = _tracker_of(a, b)
    a, b = _as_node(t, a), _as_node(t, b)
    return t._record(a.value + b.value, "add", name, (a, b), (lambda g: g, lambda g: g))


def mul(a, b, name: str | None = None) -> Node:
    """a * b, elementwise (with NumPy broadcasting)."""
    t = _tracker_of(a, b)
    a, b = _as_node(t, a), _as_node(t, b)
    av, bv = a.value, b.value
    return t._record(av * bv, "mul", name, (a, b), (lambda g: g * bv, lambda g: g * av))


def exp(x: Node, name: str | None = None) -> Node:
    """e^x."""
    y = np.exp(x.value)
    return _unary(x, "exp", y, lambda g: g * y, name)


def sin(x: Node, name: str | None = None) -> Node:
    """sin(x)."""
    return _unary(x, "sin", np.sin(x.value), lambda g: g * np.cos(x.value), name)


def square(x: Node, name: str | None = None) -> Node:
    """x^2."""
    return _unary(x, "square", x.value**2, lambda g: 2.0 * g * x.value, name)


def tanh(x: Node, name: str | None = None) -> Node:
    """tanh(x); its derivative is 1 - tanh^2."""
    y = np.tanh(x.value)
    return _unary(x, "tanh", y, lambda g: g * (1.0 - y**2), name)


def sigmoid(x: Node, name: str | None = None) -> Node:
    """1 / (1 + e^-x); its derivative is s (1 - s)."""
    y = 1.0 / (1.0 + np.exp(-x.value))
    return _unary(x, "sigmoid", y, lambda g: g * y * (1.0 - y), name)


def relu(x: Node, name: str | None = None) -> Node:
    """max(x, 0); derivative 1 where x > 0."""
    mask = (x.value > 0).astype(np.float64)
    return _unary(x, "relu", x.value * mask, lambda g: g * mask, name)


def sum(x: Node, name: str | None = None) -> Node:  # noqa: A001 - mirrors np.sum
    """The sum of all entries (a scalar)."""
    shape = x.shape
    return _unary(x, "sum", x.value.sum(), lambda g: np.broadcast_to(g, shape), name)


def tensordot(x, w, axes: int, name: str | None = None) -> Node:
    """`np.tensordot(x, w, axes)`: contracts the last `axes` dims of x with the first of w.

    The linear readout y_o = sum_ijk w_ijko x_ijk is `tensordot(x, w, 3)`.
    """
    t = _tracker_of(x, w)
    x, w = _as_node(t, x), _as_node(t, w)
    xv, wv = x.value, w.value
    nx = xv.ndim - axes  # free dims of x

    def vjp_x(g):
        return np.tensordot(g, wv, axes=(range(nx, g.ndim), range(axes, wv.ndim)))

    def vjp_w(g):
        return np.tensordot(xv, g, axes=(range(nx), range(nx)))

    return t._record(
        np.tensordot(xv, wv, axes), "tensordot", name, (x, w), (vjp_x, vjp_w)
    )


def conv2d(image, kernel, bias=None, name: str | None = None) -> Node:
    """Valid convolution, stride 1, as in the lecture's equation (1).

    a_ijk = b_k + sum_{x,y,c} I_{i+x, j+y, c} w_{xyck}  (0-based indices)

    Args:
        image: Node or array of shape (H, W, C).
        kernel: Node of shape (KH, KW, C, K). Shared by all positions: its
            gradient sums over every (i, j) -- weight sharing.
        bias: Node of shape (K,) or None.

    Returns:
        A Node of shape (H - KH + 1, W - KW + 1, K).
    """
    t = _tracker_of(image, kernel, bias)
    image, kernel = _as_node(t, image), _as_node(t, kernel)
    iv, kv = image.value, kernel.value
    kh, kw, c, _ = kv.shape
    if iv.ndim != 3 or iv.shape[2] != c:
        raise ValueError(
            f"conv2d needs an (H, W, {c}) image for a {kv.shape} kernel. "
            f"Received: image shape={iv.shape}"
        )
    # patches[i, j, c, x, y] = I[i + x, j + y, c]
    patches = np.lib.stride_tricks.sliding_window_view(iv, (kh, kw), axis=(0, 1))
    out = np.einsum("ijcxy,xyck->ijk", patches, kv)
    oh, ow = out.shape[:2]

    def vjp_image(g):
        grad = np.zeros_like(iv)
        for x in range(kh):
            for y in range(kw):
                grad[x : x + oh, y : y + ow, :] += np.einsum("ijk,ck->ijc", g, kv[x, y])
        return grad

    def vjp_kernel(g):
        return np.einsum("ijcxy,ijk->xyck", patches, g)

    parents, vjps = [image, kernel], [vjp_image, vjp_kernel]
    if bias is not None:
        bias = _as_node(t, bias)
        out = out + bias.value
        parents.append(bias)
        vjps.append(lambda g: g.sum(axis=(0, 1)))
    return t._record(out, "conv2d", name, parents, vjps)


def max_pool2d(
    x: Node, size: int = 2, stride: int = 1, name: str | None = None
) -> Node:
    """Max pooling over `size` x `size` windows of an (H, W, K) node, valid padding.

    The backward pass routes each window's gradient to its arg-max (the first
    one in row-major order on ties, as TensorFlow does): the lecture's
    "attentional focus".
    """
    if size < 1 or stride < 1:
        raise ValueError(
            f"size and stride must be >= 1. Received: size={size}, stride={stride}"
        )
    v = x.value
    h, w, k = v.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    # candidates[n, i, j, k] for the n-th offset of the window, row-major.
    candidates = np.stack(
        [
            v[dy : dy + stride * oh : stride, dx : dx + stride * ow : stride, :]
            for dy in range(size)
            for dx in range(size)
        ]
    )
    winner = candidates.argmax(axis=0)  # first maximum on ties
    out = np.take_along_axis(candidates, winner[None], axis=0)[0]
    ii, jj, kk = np.meshgrid(np.arange(oh), np.arange(ow), np.arange(k), indexing="ij")
    rows = ii * stride + winner // size
    cols = jj * stride + winner % size

    def vjp(g):
        grad = np.zeros_like(v)
        np.add.at(grad, (rows, cols, kk), g)
        return grad

    node = _unary(x, "maxpool", out, vjp, name)
    node.argmax = (rows, cols)  # where each output came from, for plots
    return node


def lecture_example(wa: Node, wb: Node) -> Node:
    """The lecture's f(w_a, w_b) = g[h(k(w_a), w_a), m(w_a), w_a, w_b].

    With k = sin, h(u, w_a) = u * w_a, m = exp and g(h, m, w_a, w_b) =
    h * m + w_a * w_b, the node w_a has four children (k, h, m and the product
    in g), so its gradient is a sum of four terms.
    """
    k = sin(wa, name="k")
    h = mul(k, wa, name="h")
    m = exp(wa, name="m")
    hm = mul(h, m, name="g_hm")
    ab = mul(wa, wb, name="g_ab")
    return add(hm, ab, name="f")


def lecture_example_gradient(wa: float, wb: float) -> tuple[float, float]:
    """The hand-derived gradient of `lecture_example`, term by term.

    df/dw_a = dg/dh [dh/dk dk/dw_a + dh/dw_a] + dg/dm dm/dw_a + dg/dw_a
    """
    k, m = np.sin(wa), np.exp(wa)
    h = k * wa
    dg_dh, dg_dm, dg_dwa = m, h, wb
    dh_dk, dk_dwa, dh_dwa = wa, np.cos(wa), k
    dm_dwa = m
    dwa = dg_dh * (dh_dk * dk_dwa + dh_dwa) + dg_dm * dm_dwa + dg_dwa
    return float(dwa), float(wa)
