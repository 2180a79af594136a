"""Central finite differences: of one array's entries (the op driver) and of a whole model."""
import numpy as np


def numeric_gradient(loss, a, h=1e-6):
    """d loss() / d a by central differences, perturbing the entries of ``a`` in place one by one."""
    grad = np.empty_like(a)
    for idx in np.ndindex(a.shape):
        orig = a[idx]
        a[idx] = orig + h
        plus = loss()
        a[idx] = orig - h
        minus = loss()
        a[idx] = orig
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def assert_model_gradients(model, loss, what, h=1e-6, tol=1e-6):
    """Backprop after ``loss()`` (a training forward returning the loss) against central
    differences of ``loss()`` for every parameter; returns the gradient of the model's input."""
    loss()
    d = model.backward(input_grad=True)
    for key, _, p, g in model.parameters():
        num = numeric_gradient(loss, p, h)
        err = np.abs(g - num).max() / max(np.abs(num).max(), 1e-3)
        assert err < tol, f"{what}: parameter {key}: relative error {err:.2e}"
    return d
