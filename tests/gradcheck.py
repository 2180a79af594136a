"""Finite-difference check of backpropagation through a whole model (used by the model tests)."""
import numpy as np


def assert_model_gradients(model, loss, what, h=1e-6, tol=1e-6):
    """Backprop after ``loss()`` (a training forward returning the loss) against central
    differences of ``loss()`` for every parameter; returns the gradient of the model's input."""
    loss()
    d = model.layers[-1].backward()
    for layer in reversed(model.layers[:-1]):
        d = layer.backward(d)
    for key, _, p, g in model.parameters():
        num = np.empty_like(p)
        for idx in np.ndindex(p.shape):
            orig = p[idx]
            p[idx] = orig + h
            plus = loss()
            p[idx] = orig - h
            minus = loss()
            p[idx] = orig
            num[idx] = (plus - minus) / (2 * h)
        err = np.abs(g - num).max() / max(np.abs(num).max(), 1e-3)
        assert err < tol, f"{what}: parameter {key}: relative error {err:.2e}"
    return d
