"""What deepnum is measured against: NumPy written the way a user would, and PyTorch CPU.

Hand NumPy: matmul for dense layers, im2col + matmul convolution (col2im by a loop over the
kernel positions), reshape-max pooling, exp/sum softmax-NLL; ``NumpyNet`` trains a network
with them, network2-style (vectorised over the batch, backprop by hand).
PyTorch: functional ops with autograd, and ``TorchNet``, a plain nn.Sequential + optim.SGD.
Both nets copy the layers and initial weights of a deepnum model, so all sides do the same work.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from deepnum import models, nn

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

# ---- hand NumPy ----------------------------------------------------------------------------

ACT = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0),
       "linear": lambda z: z}
DACT = {"sigmoid": lambda y: y * (1 - y), "tanh": lambda y: 1 - y * y, "relu": lambda y: y > 0,
        "linear": lambda y: 1}  # the derivative through the output y


def dense(x, w, b):
    return x @ w + b


def dense_grad(dy, x, w):
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


def conv2d(x, w, b):
    """Valid, stride-1 convolution by im2col + matmul; returns y and the columns for backward."""
    (n, c, h, wd), (k, _, r, s) = x.shape, w.shape
    p, q = h - r + 1, wd - s + 1
    cols = sliding_window_view(x, (r, s), axis=(2, 3)).transpose(0, 2, 3, 1, 4, 5).reshape(n * p * q, c * r * s)
    y = (cols @ w.reshape(k, -1).T + b).reshape(n, p, q, k).transpose(0, 3, 1, 2)
    return y, cols


def conv2d_grad(dy, cols, x_shape, w):
    k, c, r, s = w.shape
    n, _, p, q = dy.shape
    dy2 = dy.transpose(0, 2, 3, 1).reshape(-1, k)
    dw = (dy2.T @ cols).reshape(w.shape)
    dcols = (dy2 @ w.reshape(k, -1)).reshape(n, p, q, c, r, s)
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for i in range(r):
        for j in range(s):
            dx[:, :, i:i + p, j:j + q] += dcols[..., i, j].transpose(0, 3, 1, 2)
    return dx, dw, dy2.sum(axis=0)


def max_pool(x):
    """2×2 max-pool of even-sized planes; returns y and the mask of the maxima for backward."""
    n, c, h, w = x.shape
    windows = x.reshape(n, c, h // 2, 2, w // 2, 2)
    y = windows.max(axis=(3, 5))
    return y, windows == y[:, :, :, None, :, None]


def max_pool_grad(dy, mask):
    n, c, p, _, q, _ = mask.shape
    return (mask * dy[:, :, :, None, :, None]).reshape(n, c, 2 * p, 2 * q)


def softmax_nll(z, labels):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    return -np.log(probs[np.arange(len(labels)), labels]).mean(), probs


def softmax_nll_grad(probs, labels):
    d = probs.copy()
    d[np.arange(len(labels)), labels] -= 1
    return d / len(labels)


def dropout(x, p, rng):
    mask = (rng.random(x.shape, dtype=x.dtype) >= p) / x.dtype.type(1 - p)
    return x * mask, mask


def sgd(p, g, lr):
    p -= lr * g
    return p


def adam(p, g, m, v, lr, step, beta1=0.9, beta2=0.999, eps=1e-8):
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    p -= lr * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + eps)
    return p, m, v


class NumpyNet:
    """A deepnum model's network in hand NumPy: forward keeps what backprop needs, backprop
    walks back and updates each layer with SGD (weight decay l2 on weights) as it goes."""

    def __init__(self, model, lr, l2):
        self.layers, self.params = model.layers[:-1], model.state_dict()
        self.lr, self.l2 = lr, l2

    def state_dict(self):
        return {k: p.copy() for k, p in self.params.items()}

    def train_step(self, x, labels):
        saved = []
        for i, layer in enumerate(self.layers):
            x, keep = self._forward(layer, self.params.get(f"{i}.w"), self.params.get(f"{i}.b"), x)
            saved.append(keep)
        loss, probs = softmax_nll(x, labels)
        d = softmax_nll_grad(probs, labels)
        for i in reversed(range(len(self.layers))):
            d = self._backward(i, self.layers[i], d, saved[i])
        return float(loss)

    @staticmethod
    def _forward(layer, w, b, x):
        if isinstance(layer, nn.Dense):
            y = ACT[layer.activation](dense(x, w, b))
            return y, (x, y)
        if isinstance(layer, nn.Conv2D):
            z, cols = conv2d(x, w, b)
            y = ACT[layer.activation](z)
            return y, (cols, x.shape, y)
        if isinstance(layer, nn.MaxPool2D):
            return max_pool(x)
        shape = layer.shape if isinstance(layer, models.Reshape) else (-1,)  # Reshape or Flatten
        return x.reshape(len(x), *shape), x.shape

    def _backward(self, i, layer, d, saved):
        if isinstance(layer, nn.MaxPool2D):
            return max_pool_grad(d, saved)
        if not isinstance(layer, (nn.Dense, nn.Conv2D)):
            return d.reshape(saved)
        w, b = self.params[f"{i}.w"], self.params[f"{i}.b"]
        dz = d * DACT[layer.activation](saved[-1])
        dx, dw, db = dense_grad(dz, saved[0], w) if isinstance(layer, nn.Dense) else conv2d_grad(dz, *saved[:2], w)
        w -= self.lr * (dw + self.l2 * w)
        b -= self.lr * db
        return dx


# ---- PyTorch -------------------------------------------------------------------------------

def torch_linear(x, w, b):
    return F.linear(x, w.T, b)  # w is (n_in, n_out) as in deepnum


def torch_conv2d(x, w, b):
    return F.conv2d(x, w, b)


def torch_max_pool(x):
    return F.max_pool2d(x, 2)


def torch_softmax_nll(z, labels):
    return F.cross_entropy(z, labels)


def torch_softmax_nll_grad(z, labels):
    return torch.autograd.grad(F.cross_entropy(z, labels), z)[0]


def torch_activation(name):
    return lambda x: getattr(torch, name)(x)


def torch_dropout(x):
    return F.dropout(x, 0.5)


def torch_fwd_bwd(forward):
    """forward(*inputs) and its gradients by autograd; the last argument is dy."""
    def run(*args):
        *inputs, dy = args
        y = forward(*inputs)
        return (y, *torch.autograd.grad(y, inputs, dy))
    return run


def torch_sgd(p, g, lr):
    return p.add_(g, alpha=-lr)  # what optim.SGD does to one tensor


def torch_adam(p, g, m, v, lr, step, beta1=0.9, beta2=0.999, eps=1e-8):
    """What optim.Adam does to one tensor (its single-tensor path)."""
    m.mul_(beta1).add_(g, alpha=1 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    p.addcdiv_(m, (v / (1 - beta2**step)).sqrt_().add_(eps), value=-lr / (1 - beta1**step))
    return p, m, v


class TorchNet:
    """A deepnum model's network as a plain nn.Sequential trained by optim.SGD."""

    def __init__(self, model, lr, l2):
        modules, self.keys = [], {}  # keys: deepnum key -> (tensor, stored transposed?)
        for i, layer in enumerate(model.layers[:-1]):
            if isinstance(layer, (nn.Dense, nn.Conv2D)):
                w, b = layer.params["w"], layer.params["b"]
                dense_layer = isinstance(layer, nn.Dense)
                mod = (torch.nn.Linear(*w.shape) if dense_layer else
                       torch.nn.Conv2d(layer.c_in, layer.c_out, layer.kernel, layer.stride, layer.padding))
                with torch.no_grad():
                    mod.weight.copy_(torch.from_numpy(w.T if dense_layer else w))
                    mod.bias.copy_(torch.from_numpy(b))
                self.keys[f"{i}.w"], self.keys[f"{i}.b"] = (mod.weight, dense_layer), (mod.bias, False)
                act = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU,
                       "linear": torch.nn.Identity}[layer.activation]
                modules += [mod, act()]
            elif isinstance(layer, nn.MaxPool2D):
                modules.append(torch.nn.MaxPool2d(layer.size, layer.stride))
            elif isinstance(layer, nn.Flatten):
                modules.append(torch.nn.Flatten())
            else:
                modules.append(torch.nn.Unflatten(1, layer.shape))
        self.net = torch.nn.Sequential(*modules)
        weights = [t for k, (t, _) in self.keys.items() if k.endswith(".w")]
        biases = [t for k, (t, _) in self.keys.items() if k.endswith(".b")]
        self.opt = torch.optim.SGD([{"params": weights, "weight_decay": l2}, {"params": biases}], lr=lr)

    def state_dict(self):
        return {k: (t.detach().numpy().T if transposed else t.detach().numpy()).copy()
                for k, (t, transposed) in self.keys.items()}

    def train_step(self, x, labels):
        self.opt.zero_grad()
        loss = F.cross_entropy(self.net(torch.from_numpy(x)), torch.from_numpy(labels))
        loss.backward()
        self.opt.step()
        return loss.item()
