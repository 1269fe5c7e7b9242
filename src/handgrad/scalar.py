"""The smallest network, one number at a time: plain Python floats and ``math``.

Two inputs, three sigmoid hidden units, two softmax outputs, cross-entropy::

    x (2)  --W (2x3), b (3)-->  z (3)  --sigmoid-->  h (3)  --V (3x2), c (2)-->  s (2)  --softmax-->  p (2)

    z_j = sum_i x_i W[i][j] + b_j          h_j = sigmoid(z_j) = 1 / (1 + e^{-z_j})
    s_k = sum_j h_j V[j][k] + c_k          p_k = e^{s_k} / sum_m e^{s_m}
    L   = -log p_y                         (y: the target class)

The backward pass is the chain rule applied to these lines in reverse order,
written out scalar by scalar in :func:`backward`. This is the same network as
``nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 2))`` with
``nn.CrossEntropyLoss()``; note ``nn.Linear`` stores its weight as
(out, in), the transpose of W and V here.
"""
from __future__ import annotations

import math
import random


def sigmoid(z: float) -> float:
    """1 / (1 + e^{-z}), evaluated from e^{-|z|} so that it never overflows."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def forward(x, W, b, V, c, y):
    """Return the loss and every intermediate value (the cache) for one example.

    ``x``: 2 inputs; ``W``: 2x3 list of lists (input -> hidden); ``b``: 3 biases;
    ``V``: 3x2 (hidden -> output); ``c``: 2 biases; ``y``: target class 0 or 1.
    """
    n_in, n_hidden, n_out = len(W), len(b), len(c)
    z = [sum(x[i] * W[i][j] for i in range(n_in)) + b[j] for j in range(n_hidden)]
    h = [sigmoid(z_j) for z_j in z]
    s = [sum(h[j] * V[j][k] for j in range(n_hidden)) + c[k] for k in range(n_out)]
    # softmax with the largest score subtracted: the same p, and exp never overflows
    m = max(s)
    e = [math.exp(s_k - m) for s_k in s]
    total = sum(e)
    p = [e_k / total for e_k in e]
    loss = -(s[y] - m - math.log(total))  # -log p_y, computed without forming log(p_y) from p_y
    cache = {"x": x, "W": W, "V": V, "h": h, "p": p, "y": y}
    return loss, cache


def backward(cache):
    """Gradients of the loss with respect to W, b, V, c and x, by the chain rule.

    Output layer. L = -log p_y and p = softmax(s) give, for each output k,

        dL/ds_k = p_k - [k == y]

    (d(-log p_y)/ds_k = -(1/p_y) dp_y/ds_k, and dp_y/ds_k = p_y ([k == y] - p_k)).
    s_k = sum_j h_j V[j][k] + c_k is linear, so

        dL/dV[j][k] = dL/ds_k * h_j          dL/dc_k = dL/ds_k
        dL/dh_j     = sum_k dL/ds_k * V[j][k]     (h_j feeds every output)

    Hidden layer. h_j = sigmoid(z_j) has dh_j/dz_j = h_j (1 - h_j), so

        dL/dz_j = dL/dh_j * h_j (1 - h_j)

    and z_j = sum_i x_i W[i][j] + b_j gives

        dL/dW[i][j] = dL/dz_j * x_i          dL/db_j = dL/dz_j
        dL/dx_i     = sum_j dL/dz_j * W[i][j]

    Returns a dict with keys ``W``, ``b``, ``V``, ``c``, ``x``, each shaped like
    the value it is the gradient of.
    """
    x, W, V, h, p, y = (cache[k] for k in ("x", "W", "V", "h", "p", "y"))
    n_in, n_hidden, n_out = len(x), len(h), len(p)

    ds = [p[k] - (1.0 if k == y else 0.0) for k in range(n_out)]
    dV = [[ds[k] * h[j] for k in range(n_out)] for j in range(n_hidden)]
    dc = list(ds)
    dh = [sum(ds[k] * V[j][k] for k in range(n_out)) for j in range(n_hidden)]

    dz = [dh[j] * h[j] * (1.0 - h[j]) for j in range(n_hidden)]
    dW = [[dz[j] * x[i] for j in range(n_hidden)] for i in range(n_in)]
    db = list(dz)
    dx = [sum(dz[j] * W[i][j] for j in range(n_hidden)) for i in range(n_in)]
    return {"W": dW, "b": db, "V": dV, "c": dc, "x": dx}


def init_params(seed: int = 0, n_in: int = 2, n_hidden: int = 3, n_out: int = 2, scale: float = 1.0):
    """Small random starting weights (uniform in [-scale, scale]) and zero biases, from ``random.Random(seed)``."""
    r = random.Random(seed)
    return {
        "W": [[r.uniform(-scale, scale) for _ in range(n_hidden)] for _ in range(n_in)],
        "b": [0.0] * n_hidden,
        "V": [[r.uniform(-scale, scale) for _ in range(n_out)] for _ in range(n_hidden)],
        "c": [0.0] * n_out,
    }


def sgd_step(params, grads, lr: float) -> None:
    """theta <- theta - lr * dL/dtheta for every number in W, b, V, c (in place)."""
    for name in ("W", "b", "V", "c"):
        value, grad = params[name], grads[name]
        for i, g in enumerate(grad):
            if isinstance(g, list):
                for j, g_ij in enumerate(g):
                    value[i][j] -= lr * g_ij
            else:
                value[i] -= lr * g


def train(examples, params, lr: float = 0.5, epochs: int = 10):
    """Stochastic gradient descent over single examples ``(x, y)``, in the given order.

    Updates ``params`` (a dict with W, b, V, c, see :func:`init_params`) in place
    and returns the mean loss of each epoch.
    """
    history = []
    for _ in range(epochs):
        total = 0.0
        for x, y in examples:
            loss, cache = forward(x, params["W"], params["b"], params["V"], params["c"], y)
            sgd_step(params, backward(cache), lr)
            total += loss
        history.append(total / len(examples))
    return history


def predict(x, params) -> int:
    """The class with the larger output probability."""
    # the target only enters the loss, not p, so any class will do here
    _, cache = forward(x, params["W"], params["b"], params["V"], params["c"], 0)
    p = cache["p"]
    return max(range(len(p)), key=p.__getitem__)
