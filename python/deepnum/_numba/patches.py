"""im2col and col2im for conv2d (conv2d.py) and its Winograd path's 6×6 tiles (conv2d_winograd.py)."""
import numba

U = numba.uintp


@numba.njit(cache=True, nogil=True)
def _span(offset, stride, size, n_out):
    # the outputs o in [lo, hi) with 0 <= o * stride + offset < size
    lo = 0 if offset >= 0 else (stride - 1 - offset) // stride
    hi = min(n_out, (size - offset + stride - 1) // stride)
    return lo, max(lo, hi)


@numba.njit(cache=True, nogil=True, parallel=True)
def patches(cols, planes, R, S, stride_h, stride_w, pad_h, pad_w, P, Q, back):
    # every tap (c, r, s) of every image i: its row segment of cols and the pixels of planes[i, c] it reads;
    # cols = those pixels (0 in the padding), or with back, planes = the sum of the segments over the taps.
    # Offsets into the flat arrays are unsigned: Numba then leaves out its negative-index wrap-around
    # test on every element (2-3x faster on these 8-24 element runs).
    m, C, H, W = planes.shape
    PQ, L = P * Q, cols.shape[1]
    flat_cols, flat_planes = cols.reshape(cols.size), planes.reshape(planes.size)
    sw = U(stride_w)
    for ic in numba.prange(m * C):
        i, c = ic // C, ic % C
        plane = U(ic * H * W)
        if back:
            flat_planes[plane:plane + U(H * W)] = 0
        for r in range(R):
            p0, p1 = _span(r - pad_h, stride_h, H, P)
            for s in range(S):
                q0, q1 = _span(s - pad_w, stride_w, W, Q)
                seg = U(((c * R + r) * S + s) * L + i * PQ)
                if not back and (p1 - p0 < P or q1 - q0 < Q):
                    flat_cols[seg:seg + U(PQ)] = 0
                n = U(q1 - q0)
                for p in range(p0, p1):
                    part = seg + U(p * Q + q0)
                    pixels = plane + U((p * stride_h + r - pad_h) * W + q0 * stride_w + s - pad_w)
                    if back and sw == 1:
                        for q in range(n):
                            flat_planes[pixels + q] += flat_cols[part + q]
                    elif back:
                        for q in range(n):
                            flat_planes[pixels + q * sw] += flat_cols[part + q]
                    elif sw == 1:
                        for q in range(n):
                            flat_cols[part + q] = flat_planes[pixels + q]
                    else:
                        for q in range(n):
                            flat_cols[part + q] = flat_planes[pixels + q * sw]
