"""Ops that a backend composes from its other entry points instead of running one kernel for them.

``mlp_train_step`` for the numba, numpy and cuda backends (the cpp backend runs it as one call,
cpp/mlp.cpp): the layer-by-layer path of a Dense stack with a softmax-NLL head and plain SGD,
calling the entry points in the order (and with the arithmetic) of the layers and the optimiser,
so its result is theirs bit for bit.

Backend layer: imports no ``deepnum.ops``, no model module and nothing from the package's ``__init__``.
"""
import math


def mlp_train_step(k, ws, bs, activations, x, labels, lr, weight_decay, alpha):
    """One SGD step of Dense layers ``a_l = act_l(a_{l-1}·w_l + b_l)`` and a softmax-NLL head on backend ``k``
    (its entry points; arguments already checked by the contract): ws[l], bs[l] updated in place,
    the loss before the update returned; a loss that is not finite leaves every parameter as it was."""
    a = [x]
    for w, b, act in zip(ws, bs, activations):
        y = k.linear_forward(a[-1], w, b)
        a.append(y if act == "linear" else k.activation_forward(y, act, alpha))
    loss, probs = k.softmax_nll_forward(a[-1], labels)
    if not math.isfinite(loss):
        return loss
    d = k.softmax_nll_backward(probs, labels)
    for i in range(len(ws) - 1, -1, -1):
        if activations[i] != "linear":
            d = k.activation_backward(a[i + 1], d, activations[i], alpha)
        d, dw, db = k.linear_backward(d, a[i], ws[i], i > 0)
        k.sgd_update(ws[i], None, dw, lr, 0.0, False, weight_decay)
        k.sgd_update(bs[i], None, db, lr, 0.0, False, 0.0)
    return loss
