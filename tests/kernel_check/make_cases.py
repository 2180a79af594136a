"""Write the cases of tests/kernel_check/kernel_check.cpp: every CPU kernel of cpp/kernels.h on small shapes and on the
edges of its paths (batch 1, kernel = input, stride > 1, padding, odd sizes, non-multiples of the SIMD widths, sizes
above the threading threshold), in float32 and float64, with the values that the NumPy reference
(deepnum._reference, the test oracle) gives.

The driver runs where Python cannot: the aarch64 cross-build under qemu-aarch64, and the x86 build under qemu-x86_64
with older CPUs (Nehalem: the baseline clones; Haswell: the AVX2 ones), so that every SIMD level and architecture is
checked against the same reference values (.ci/portable).

    python tests/kernel_check/make_cases.py CASES_FILE [--wrong]

--wrong puts one element of each case's expected outputs 1% off, so that the driver must fail every case: the check
that it can fail.

Format (little-endian): b"DNKC1\\n", then per case: the op's name (u32 length, bytes), the element size (u8: 4 or 8),
the kernel's value (u8 1 and f64, or u8 0), u32 argument count and the arguments of the kernel in its order (outputs
first, as deepnum._contract returns them): b"a" + array, b"i" + i64, b"d" + f64 or b"l" + u32 count + arrays, an
array being its kind (b"f" float or b"i" int64), u32 ndim, i64 shape[ndim], u8 flags, then its values before the call
(flags & 1: an input or an in-place update; an output has none: the driver fills it with NaN, or -1) and its values
after the reference's call (flags & 2: an output or an updated array; otherwise the values before, unchanged).
"""
import struct
import sys

import numpy as np

from deepnum import _backend, _contract, _reference

rng = np.random.default_rng(20261207)


def normal(*shape):
    return rng.standard_normal(shape)


def cases():
    """(op, arguments of the deepnum._contract call with float64 arrays) for every case; each runs in both dtypes."""
    for m, n, k in ((1, 1, 1), (1, 10, 784), (3, 5, 7), (4, 16, 17), (17, 33, 100), (64, 64, 64), (100, 10, 784),
                    (150, 130, 200), (5, 300, 9)):
        for ta in (False, True):
            for tb in (False, True):
                yield "gemm", (normal(*((k, m) if ta else (m, k))), normal(*((n, k) if tb else (k, n))), ta, tb)
    for n, i, o in ((1, 784, 10), (7, 13, 5), (64, 100, 30), (600, 500, 10)):
        yield "linear_forward", (normal(n, i), normal(i, o), normal(o))
        for need_dx in (True, False):
            yield "linear_backward", (normal(n, o), normal(n, i), normal(i, o), need_dx)
    for n, c, h, w, k, r, s, stride, pad in ((1, 1, 5, 5, 1, 5, 5, (1, 1), (0, 0)), (2, 3, 7, 6, 4, 3, 3, (2, 1), (1, 0)),
                                             (3, 2, 9, 9, 5, 3, 2, (2, 3), (2, 1)), (10, 1, 28, 28, 20, 5, 5, (1, 1), (0, 0)),
                                             (10, 20, 12, 12, 40, 5, 5, (1, 1), (0, 0)), (1, 4, 4, 4, 3, 1, 1, (1, 1), (0, 0)),
                                             (4, 5, 9, 11, 7, 5, 5, (1, 1), (2, 1))):  # this and (10, 20, ..): Winograd
        p, q = (h + 2 * pad[0] - r) // stride[0] + 1, (w + 2 * pad[1] - s) // stride[1] + 1
        yield "conv2d_forward", (normal(n, c, h, w), normal(k, c, r, s), normal(k), stride, pad)
        for need_dx in (True, False):
            yield "conv2d_backward", (normal(n, k, p, q), normal(n, c, h, w), normal(k, c, r, s), stride, pad, need_dx)
    for shape, size, stride in (((2, 3, 8, 8), (2, 2), (2, 2)), ((1, 2, 7, 5), (3, 2), (2, 1)),
                                ((10, 20, 24, 24), (2, 2), (2, 2)), ((2, 1, 6, 38), (2, 2), (2, 2)), ((1, 1, 3, 3), (3, 3), (1, 1))):
        x = normal(*shape)
        x.flat[::7] = 0.0  # ties, as after a relu
        yield "max_pool2d_forward", (x, size, stride)
        y, argmax, *_ = _contract.max_pool2d_forward(x, size, stride)
        _reference.max_pool2d_forward(y, argmax, x, *size, *stride)
        yield "max_pool2d_backward", (normal(*y.shape), argmax, shape)
    for n, classes in ((1, 10), (7, 3), (300, 10)):
        labels = rng.integers(0, classes, n)
        yield "softmax_nll_forward", (3 * normal(n, classes), labels)
        probs = rng.random((n, classes)) + 0.01
        yield "softmax_nll_backward", (probs / probs.sum(1, keepdims=True), labels)
    big = 262_145  # just above the threading threshold (cpp/parallel.h's kParallelMin)
    for name in _contract.ACTIVATIONS:
        for n in (1, 17, 1000) + ((big,) if name in ("tanh", "leaky_relu") else ()):
            x = 3 * normal(n)
            yield "activation_forward", (x, name, 0.1)
            y = np.empty_like(x)
            _reference.activation_forward(y, x, _contract.ACTIVATIONS[name], 0.1)
            yield "activation_backward", (y, normal(n), name, 0.1)
    for n in (1, 1000, big):
        yield "dropout_forward", (normal(n), 0.3, 42)
        yield "dropout_backward", (normal(n), np.where(rng.random(n) < 0.3, 0.0, 1 / 0.7))
        for momentum, nesterov in ((0.0, False), (0.9, False), (0.9, True))[-1 if n == big else 0:]:
            yield "sgd_update", (normal(n), normal(n) if momentum else None, normal(n), 0.1, momentum, nesterov, 1e-3)
        yield "adam_update", (normal(n), 0.1 * normal(n), rng.random(n), normal(n), 1e-3, 0.9, 0.999, 1e-8, 1e-4, 7)
    for steps, n, d, h, act, bptt, clip in ((3, 2, 4, 5, "tanh", 0, None), (4, 1, 3, 6, "relu", 2, 1.0),
                                            (5, 3, 7, 4, "sigmoid", 0, 0.5), (2, 5, 2, 3, "linear", 1, None),
                                            (10, 100, 28, 128, "tanh", 5, 1.0)):
        x, h0 = normal(steps, n, d), normal(n, h)
        w_xh, w_hh, b = normal(d, h) / np.sqrt(d), normal(h, h) / np.sqrt(h), normal(h)
        yield "rnn_forward", (x, h0, w_xh, w_hh, b, act)
        h_all, *_ = _contract.rnn_forward(x, h0, w_xh, w_hh, b, act)
        _reference.rnn_forward(h_all, x, h0, w_xh, w_hh, b, _contract.RNN_ACTIVATIONS.index(act))
        yield "rnn_backward", (h_all, normal(steps, n, h), x, h0, w_xh, w_hh, act, bptt, clip)
    for sizes, acts, n in (([20, 16, 3], ["tanh", "linear"], 8), ([784, 100, 10], ["relu", "linear"], 1),
                           ([50, 40, 30, 10], ["sigmoid", "leaky_relu", "linear"], 64), ([784, 500, 10], ["tanh", "linear"], 20)):
        ws = [normal(a, b) / np.sqrt(a) for a, b in zip(sizes, sizes[1:])]
        bs = [0.1 * normal(b) for b in sizes[1:]]
        yield "mlp_train_step", (ws, bs, acts, normal(n, sizes[0]), rng.integers(0, sizes[-1], n), 0.1, 1e-4, 0.01)


def in_dtype(value, dtype):
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value.astype(dtype)
    if isinstance(value, list):
        return [in_dtype(v, dtype) for v in value]
    return value


def snapshot(value):
    if isinstance(value, (list, tuple)):
        return [snapshot(v) for v in value]
    return value.copy() if isinstance(value, np.ndarray) else value


def reference(op, kargs, call):
    """The reference's value of op on kargs (filled in place), or None."""
    if op == "mlp_train_step":
        return _backend.load("numpy").mlp_train_step(*call)
    return getattr(_reference, op)(*kargs)


def write_array(out, before, after, output, wrong):
    kind = b"i" if after.dtype == np.int64 else b"f"
    changed = not output and before.tobytes() != after.tobytes()  # an in-place update
    if wrong and (output or changed) and after.size:  # --wrong: one element off by 1% of the largest
        after = after.copy()
        after.flat[after.size // 2] += 1 if kind == b"i" else 0.01 * max(1.0, float(np.abs(after).max()))
    out.write(kind + struct.pack("<I", after.ndim) + struct.pack(f"<{after.ndim}q", *after.shape))
    out.write(struct.pack("<B", (0 if output else 1) | (2 if output or changed else 0)))
    out.write((b"" if output else before.tobytes()) + (after.tobytes() if output or changed else b""))


def write_case(out, op, dtype, call, wrong):
    call = tuple(in_dtype(v, dtype) for v in call)
    kargs = getattr(_contract, op)(*call)
    before = snapshot(kargs)
    if op == "mlp_train_step":  # the numpy backend updates the contract's arrays in place; it takes the names
        call = kargs[:2] + (call[2],) + kargs[3:]
    value = reference(op, kargs, call)
    name = op.encode()
    out.write(struct.pack("<I", len(name)) + name + struct.pack("<B", np.dtype(dtype).itemsize))
    out.write(struct.pack("<Bd", 1, float(value)) if value is not None else struct.pack("<B", 0))
    out.write(struct.pack("<I", len(kargs)))
    outputs = _contract.OPS[op]
    for i, (old, new) in enumerate(zip(before, kargs)):
        if isinstance(new, np.ndarray):
            out.write(b"a")
            write_array(out, old, new, i < outputs, wrong)
        elif isinstance(new, list) and all(isinstance(a, np.ndarray) for a in new):
            out.write(b"l" + struct.pack("<I", len(new)))
            for a, b in zip(old, new):
                write_array(out, a, b, False, wrong)
        elif isinstance(new, list):  # the activation codes of mlp_train_step
            out.write(b"l" + struct.pack("<I", 1))
            codes = np.asarray(new, np.int64)
            write_array(out, codes, codes, False, False)
        elif isinstance(new, (bool, int, np.integer)):
            out.write(b"i" + struct.pack("<q", int(new)))
        else:
            out.write(b"d" + struct.pack("<d", float(new)))


def main(path, wrong=False):
    count = 0
    with open(path, "wb") as out:
        out.write(b"DNKC1\n")
        for op, call in cases():
            for dtype in (np.float32, np.float64):
                write_case(out, op, dtype, call, wrong)
                count += 1
    print(f"{path}: {count} cases" + (", each with one wrong expected value (--wrong)" if wrong else ""))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["--wrong"]):
        sys.exit("usage: make_cases.py CASES_FILE [--wrong]")
    main(sys.argv[1], wrong=sys.argv[2:] == ["--wrong"])
