"""Repeat a warmed-up call, summarise the times, and check results against the reference."""
import gc
import math
import time

import numpy as np


def _seconds(fn, args, number):
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            fn(*args)
        return time.perf_counter() - start
    finally:
        gc.enable()


def repeat(fn, args, repeats, min_time):
    """``repeats`` samples of the seconds per call of fn(*args), each averaged over enough calls
    to last ``min_time``, and that number of calls. The caller has already called fn once
    (compilation, first touch)."""
    first = _seconds(fn, args, 1)
    number = max(1, math.ceil(min_time / max(first, 1e-9)))
    samples = [first] if number == 1 else []
    while len(samples) < repeats:
        samples.append(_seconds(fn, args, number) / number)
    return samples, number


def summary(samples):
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "min": min(samples),
            "max": max(samples), "repeats": len(samples)}


def _numpy(a):
    return a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)


def assert_close(got, want, what, rtol=1e-3):
    """Every output of ``got`` matches ``want`` (a tuple or one array): shape, then values."""
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    if len(got) != len(want):
        raise AssertionError(f"{what}: {len(got)} outputs, expected {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = _numpy(g), _numpy(w)
        atol = rtol * 0.1 * float(np.abs(w).max(initial=0.0))
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol, strict=True,
                                   err_msg=f"{what}: output {i}")
