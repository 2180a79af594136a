"""Every op of deepnum._cuda.OPS, called once per edge shape in float32 and float64 on DeviceArrays and
checked loosely against the NumPy reference: the program that compute-sanitizer (memcheck, racecheck,
initcheck) and the emulated build's ASan/TSan runs execute.

    python tools/cuda_ops_once.py [--only OP[,OP...]]

Shapes: batch 1, a kernel or window as large as its input, stride > 1, padding > 0, odd sizes, sizes
just past gemm's 64×64 block tile and the 256-thread block, one bad-label and one bad-argmax call
(ValueError expected). Each op's entry point is called as the compiled module binds it (the reference
kernel's arguments without its outputs); the reference is the ``numpy`` backend's entry point with the
same arguments (deepnum._reference behind the same contract). The in-place updates are compared on
their updated arrays. An op of _cuda.OPS without calls here is a failure, so a new op cannot go
unchecked. Exits 1 on any mismatch or error (each named with op, call and output), 2 without a device.
"""
import argparse
import sys
import time

import numpy as np

from deepnum import _backend, cuda

TOL = {np.float32: 1e-4, np.float64: 1e-9}  # loose: sums run in other orders on the device


def _normal(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _distinct(rng, shape, dtype):
    """Values pairwise apart (no ties for max-pool's first-maximum rule)."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2 + 0.5) * 0.01).reshape(shape).astype(dtype)


def _conv_geometry(x_shape, w_shape, stride, padding):
    (sh, sw), (ph, pw) = (s if isinstance(s, tuple) else (s, s) for s in (stride, padding))
    p = (x_shape[2] + 2 * ph - w_shape[2]) // sh + 1
    q = (x_shape[3] + 2 * pw - w_shape[3]) // sw + 1
    return x_shape[0], w_shape[0], p, q


# ---- the calls: op -> [(label, args)], args as the compiled entry point takes them --------------
# Each maker gets (rng, dtype, ref), ref being the reference entry points (for saved activations).

def _gemm(rng, dtype, ref):
    calls = []
    for m, n, k, ta, tb in [(1, 1, 1, False, False), (65, 63, 17, False, True), (64, 64, 16, True, False),
                            (129, 257, 65, True, True), (1, 257, 300, False, False)]:
        a = _normal(rng, (k, m) if ta else (m, k), dtype)
        b = _normal(rng, (n, k) if tb else (k, n), dtype)
        calls.append((f"m={m} n={n} k={k} trans_a={ta} trans_b={tb}", (a, b, ta, tb)))
    return calls


def _linear_forward(rng, dtype, ref):
    return [(f"x ({n}, {i}) -> {o}", (_normal(rng, (n, i), dtype), _normal(rng, (i, o), dtype),
                                      _normal(rng, o, dtype)))
            for n, i, o in [(1, 3, 65), (257, 65, 1), (100, 784, 10)]]


def _linear_backward(rng, dtype, ref):
    return [(f"x ({n}, {i}) -> {o} need_dx={need}", (_normal(rng, (n, o), dtype), _normal(rng, (n, i), dtype),
                                                      _normal(rng, (i, o), dtype), need))
            for n, i, o, need in [(1, 3, 65, True), (257, 65, 1, True), (20, 784, 100, False)]]


CONV = [  # (x shape, w shape, stride, padding, bias)
    ((1, 2, 5, 5), (3, 2, 5, 5), 1, 0, True),  # batch 1, kernel = input: a 1x1 output
    ((2, 3, 9, 7), (4, 3, 3, 3), (2, 1), (1, 2), False),  # stride > 1, padding, odd sizes, no bias
    ((1, 4, 6, 6), (5, 4, 1, 1), 3, 2, True),  # 1x1 kernel, stride 3, padding 2
    ((3, 1, 28, 28), (20, 1, 5, 5), 1, 0, True),  # network3's first layer: 576 outputs a plane (> 256)
    ((2, 20, 12, 12), (40, 20, 5, 5), 1, 0, True),  # its second layer: c*r*s = 500 (past the 64-wide tile)
]


def _conv2d_forward(rng, dtype, ref):
    return [(f"x {xs} w {ws} stride {s} padding {p} bias {b}",
             (_normal(rng, xs, dtype), _normal(rng, ws, dtype), _normal(rng, ws[0], dtype) if b else None, s, p))
            for xs, ws, s, p, b in CONV]


def _conv2d_backward(rng, dtype, ref):
    return [(f"x {xs} w {ws} stride {s} padding {p} need_dx={i != 3}",
             (_normal(rng, _conv_geometry(xs, ws, s, p), dtype), _normal(rng, xs, dtype), _normal(rng, ws, dtype),
              s, p, i != 3))
            for i, (xs, ws, s, p, _) in enumerate(CONV)]


POOL = [((1, 1, 1, 1), 1, None), ((2, 3, 9, 7), 2, None), ((1, 2, 7, 9), (2, 3), (2, 1)), ((1, 2, 5, 6), (5, 6), 1),
        ((2, 20, 24, 24), 2, None)]  # 1x1; odd sizes (partial windows dropped); overlapping; window = input; seed


def _max_pool2d_forward(rng, dtype, ref):
    return [(f"x {xs} size {k} stride {s}", (_distinct(rng, xs, dtype), k, s)) for xs, k, s in POOL]


def _max_pool2d_backward(rng, dtype, ref):
    calls = []
    for xs, k, s in POOL:
        y, argmax = ref.max_pool2d_forward(_distinct(rng, xs, dtype), k, s)
        calls.append((f"x {xs} size {k} stride {s}", (_normal(rng, y.shape, dtype), argmax, xs)))
    bad = argmax.copy()
    bad.flat[-1] = xs[2] * xs[3]  # one past the plane
    return calls + [("argmax out of range", (_normal(rng, y.shape, dtype), bad, xs), ValueError)]


SOFTMAX = [(1, 1), (257, 10), (3, 1000), (600, 10)]  # (N, classes): one class, past the block, wide rows


def _bad_labels(n, classes):
    labels = np.zeros(n, np.int64)
    labels[-1] = classes  # one past the last class
    return labels


def _softmax_nll_forward(rng, dtype, ref):
    calls = [(f"N={n} classes={c}", (_normal(rng, (n, c), dtype, 3.0), rng.integers(0, c, n))) for n, c in SOFTMAX]
    return calls + [("label out of range", (_normal(rng, (5, 10), dtype), _bad_labels(5, 10)), ValueError)]


def _softmax_nll_backward(rng, dtype, ref):
    calls = []
    for n, c in SOFTMAX:
        labels = rng.integers(0, c, n)
        _, probs = ref.softmax_nll_forward(_normal(rng, (n, c), dtype, 3.0), labels)
        calls.append((f"N={n} classes={c}", (probs, labels)))
    return calls + [("label out of range", (probs[:5], _bad_labels(5, probs.shape[1])), ValueError)]


ACT_SHAPES = [(1,), (257,), (3, 5, 17), (2, 20, 24, 24)]


def _away_from_kinks(rng, shape, dtype):
    x = _normal(rng, shape, dtype, 3.0)
    return np.where(np.abs(x) < 0.1, np.copysign(0.1, x), x).astype(dtype)


def _activation_forward(rng, dtype, ref):
    return [(f"{name} x {shape}", (_away_from_kinks(rng, shape, dtype), name, 0.2))
            for name in cuda_module().ACTIVATIONS for shape in ACT_SHAPES]


def _activation_backward(rng, dtype, ref):
    calls = []
    for name in cuda_module().ACTIVATIONS:
        for shape in ACT_SHAPES:
            y = ref.activation_forward(_away_from_kinks(rng, shape, dtype), name, 0.2)
            calls.append((f"{name} y {shape}", (y, _normal(rng, shape, dtype), name, 0.2)))
    return calls


DROPOUT = [((1,), 0.0, 0), ((257,), 0.5, 2**64 - 1), ((3, 65), 0.9, 12345)]


def _dropout_forward(rng, dtype, ref):
    return [(f"x {shape} p={p}", (_normal(rng, shape, dtype), p, seed)) for shape, p, seed in DROPOUT]


def _dropout_backward(rng, dtype, ref):
    return [(f"dy {shape} p={p}", (_normal(rng, shape, dtype), ref.dropout_forward(_normal(rng, shape, dtype), p,
                                                                                   seed)[1]))
            for shape, p, seed in DROPOUT]


def _sgd_update(rng, dtype, ref):
    calls = []
    for shape, momentum, nesterov, wd in [((1,), 0.0, False, 0.0), ((257,), 0.9, False, 0.01),
                                          ((65, 3), 0.5, True, 0.1)]:
        velocity = _normal(rng, shape, dtype) if momentum else None
        calls.append((f"param {shape} momentum={momentum} nesterov={nesterov}",
                      (_normal(rng, shape, dtype), velocity, _normal(rng, shape, dtype), 0.1, momentum, nesterov, wd)))
    return calls


def _adam_update(rng, dtype, ref):
    return [(f"param {shape} step={step}", (_normal(rng, shape, dtype), _normal(rng, shape, dtype),
                                            np.abs(_normal(rng, shape, dtype)), _normal(rng, shape, dtype),
                                            1e-3, 0.9, 0.999, 1e-8, wd, step))
            for shape, step, wd in [((1,), 1, 0.0), ((257,), 7, 0.01), ((65, 3), 1000, 0.0)]]


RNN = [((1, 1, 1), 1, "tanh"), ((5, 3, 7), 65, "sigmoid"), ((4, 2, 3), 257, "relu"), ((3, 1, 2), 5, "linear")]


def _rnn_inputs(rng, dtype, tnd, h):
    t, n, d = tnd
    return (_normal(rng, (t, n, d), dtype), _normal(rng, (n, h), dtype, 0.5), _normal(rng, (d, h), dtype, d ** -0.5),
            _normal(rng, (h, h), dtype, 0.5 * h ** -0.5), _normal(rng, h, dtype, 0.5))


def _rnn_forward(rng, dtype, ref):
    return [(f"x {tnd} H={h} {act}", (*_rnn_inputs(rng, dtype, tnd, h), act)) for tnd, h, act in RNN]


def _rnn_backward(rng, dtype, ref):
    calls = []
    for (tnd, h, act), (bptt, clip) in zip(RNN, [(None, None), (2, None), (None, 0.3), (1, 0.3)]):
        x, h0, w_xh, w_hh, b_h = _rnn_inputs(rng, dtype, tnd, h)
        h_all = ref.rnn_forward(x, h0, w_xh, w_hh, b_h, act)
        calls.append((f"x {tnd} H={h} {act} bptt_steps={bptt} clip={clip}",
                      (h_all, _normal(rng, h_all.shape, dtype), x, h0, w_xh, w_hh, act, bptt, clip)))
    return calls


CALLS = {f.__name__[1:]: f for f in [
    _gemm, _linear_forward, _linear_backward, _conv2d_forward, _conv2d_backward, _max_pool2d_forward,
    _max_pool2d_backward, _softmax_nll_forward, _softmax_nll_backward, _activation_forward, _activation_backward,
    _dropout_forward, _dropout_backward, _sgd_update, _adam_update, _rnn_forward, _rnn_backward]}


# ---- running and checking ----------------------------------------------------------------------

def cuda_module():
    from deepnum import _cuda

    return _cuda


def to_device(v):
    if isinstance(v, np.ndarray):
        return cuda.DeviceArray.from_numpy(v.astype(np.int64) if v.dtype.kind in "iu" else v)
    return v


def to_host(v):
    return v.to_numpy() if isinstance(v, cuda.DeviceArray) else v


def _outputs(result, args, n_outputs):
    """The entry point's results as a tuple; for the in-place updates (no outputs), the updated arrays."""
    if n_outputs == 0:
        return tuple(a for a in args[:3] if isinstance(a, (np.ndarray, cuda.DeviceArray)))
    return result if isinstance(result, tuple) else (result,)


def compare(got, want, dtype):
    """The first difference between two output tuples as a message, or None."""
    if len(got) != len(want):
        return f"{len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = to_host(g), to_host(w)
        if isinstance(w, float):
            if not isinstance(g, float) or not np.isclose(g, w, rtol=TOL[dtype], atol=TOL[dtype]):
                return f"output {i}: {g!r}, expected {w!r}"
            continue
        if not isinstance(g, np.ndarray) or g.shape != w.shape or g.dtype != w.dtype:
            return f"output {i}: {type(g).__name__} {getattr(g, 'shape', '')} {getattr(g, 'dtype', '')}, " \
                   f"expected ndarray {w.shape} {w.dtype}"
        if w.dtype.kind in "iu":
            bad = np.flatnonzero(g != w)
        else:
            scale = max(1.0, float(np.abs(w).max(initial=0.0)))
            bad = np.flatnonzero(~np.isclose(g, w, rtol=TOL[dtype], atol=TOL[dtype] * scale))
        if bad.size:
            j = bad[0]
            return f"output {i} {w.shape}: {bad.size} of {w.size} elements differ, first at flat index {j}: " \
                   f"{g.flat[j]!r}, expected {w.flat[j]!r}"
    return None


def check_call(op, n_outputs, ref, args, dtype, expect=None):
    """One call on the device and on the reference (each on its own copy of the arguments); a failure
    message or None."""
    host = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
    device = tuple(to_device(a) for a in args)
    if expect is not None:
        for side, fn, a in (("cuda", getattr(cuda_module(), op), device), ("reference", getattr(ref, op), host)):
            try:
                fn(*a)
            except expect:
                continue
            return f"{side}: no {expect.__name__} raised"
        return None
    want = _outputs(getattr(ref, op)(*host), host, n_outputs)
    got = _outputs(getattr(cuda_module(), op)(*device), device, n_outputs)
    return compare(got, want, dtype)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python tools/cuda_ops_once.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=lambda s: s.split(","), help="comma-separated ops (default: all of _cuda.OPS)")
    args = parser.parse_args(argv)
    reason = cuda.unavailable_reason()
    if reason is not None:
        print(f"cuda_ops_once: {reason}", file=sys.stderr)
        return 2
    module = cuda_module()
    ops = list(module.OPS)
    unknown = sorted(set(args.only or ()) - set(ops))
    if unknown:
        parser.error(f"not ops of deepnum._cuda.OPS: {unknown}")
    ref = _backend.load("numpy")
    print(f"device: {cuda.device_name()}{' (emulated)' if cuda.is_emulated() else ''}", flush=True)
    failures, calls, start = [], 0, time.perf_counter()
    for op in args.only or ops:
        if op not in CALLS:
            failures.append(f"{op}: no calls in tools/cuda_ops_once.py (add its edge shapes to CALLS)")
            continue
        op_start, n_before = time.perf_counter(), calls
        for bits, dtype in ((32, np.float32), (64, np.float64)):
            rng = np.random.default_rng([list(CALLS).index(op), bits])
            for label, call_args, *expect in CALLS[op](rng, dtype, ref):
                calls += 1
                try:
                    problem = check_call(op, module.OPS[op], ref, call_args, dtype, *expect)
                except Exception as e:  # noqa: BLE001 - a CUDA error names itself; report it and go on
                    problem = f"{type(e).__name__}: {e}"
                if problem:
                    failures.append(f"{op} [{dtype.__name__}, {label}]: {problem}")
        print(f"{op:<22} {calls - n_before:3d} calls  {time.perf_counter() - op_start:7.2f} s", flush=True)
    module.synchronize()  # an asynchronous fault of the last kernels surfaces here
    for line in failures:
        print(f"FAIL {line}", file=sys.stderr)
    print(f"cuda_ops_once: {calls} calls of {len(args.only or ops)} ops in {time.perf_counter() - start:.1f} s, "
          f"{len(failures)} failure{'s' * (len(failures) != 1)}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
