"""Numba twin of cpp/softmax_nll.cpp.

Softmax fused with the negative log-likelihood: logits and probs (N,n_classes), labels (N,)
int64, already checked to lie in [0, n_classes). The forward pass subtracts each row's
maximum before exp, so exp never overflows, and returns the mean loss as a float: the
per-row losses, computed in the array's dtype, are summed serially in float64. The backward
pass writes dlogits = (probs - onehot(labels)) / N. Both run in parallel over rows.
"""
import numba
import numpy as np


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")  # no ZeroDivisionError branches
def softmax_nll_forward(probs, logits, labels):
    # logits and probs are (N,n_classes), labels (N,); returns the mean loss as a float
    N, n_classes = logits.shape
    losses = np.empty(N, np.float64)
    for i in numba.prange(N):
        row, prow = logits[i], probs[i]
        m = row[0]
        for j in range(1, n_classes):
            if row[j] > m or np.isnan(row[j]):  # a NaN stays the maximum, as in np.max
                m = row[j]
        s = logits.dtype.type(0)
        for j in range(n_classes):
            prow[j] = np.exp(row[j] - m)
            s += prow[j]
        for j in range(n_classes):
            prow[j] /= s
        losses[i] = np.log(s) - (row[labels[i]] - m)
    total = 0.0
    for i in range(N):
        total += losses[i]
    return total / N


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def softmax_nll_backward(dlogits, probs, labels):
    # probs and dlogits are (N,n_classes), labels (N,)
    N, n_classes = probs.shape
    t = probs.dtype.type
    for i in numba.prange(N):
        for j in range(n_classes):
            dlogits[i, j] = probs[i, j] / t(N)
        dlogits[i, labels[i]] = (probs[i, labels[i]] - t(1)) / t(N)
