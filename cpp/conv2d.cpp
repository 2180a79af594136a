/* conv2d: 2-D cross-correlation with stride and zero padding, NCHW, via im2col + gemm.
 *   forward:  y[n,k,p,q] = b[k] + sum over c,r,s of w[k,c,r,s] · x[n, c, p·sh - ph + r, q·sw - pw + s]
 *   backward: dx, dw, db, all written with `=`; dx == nullptr skips dx (a model's first layer).
 * Layout: x (N,C,H,W), w (K,C,R,S) = (K, C·R·S), y (N,K,P,Q), all C-contiguous.
 * Images go in chunks of nb, fixed by the shapes alone (C·R·S·nb·P·Q ~ kChunkElems, at least two
 * chunks when N > 1, balanced). For a chunk, im2col builds col (C·R·S, nb·P·Q), one column per output
 * pixel, and one gemm does the work:
 *   y   (K, nb·PQ)  = w · col                  then scattered into (n, k, p, q) order plus b
 *   dw_c (K, C·R·S) = dy (K, nb·PQ) · colᵀ      dw = the dw_c summed in chunk order
 *   dcol            = wᵀ · dy                  then col2im scatters it back into dx
 * With two or more chunks each thread takes whole chunks (one serial gemm each, no barrier between
 * im2col, gemm and scatter); with one, gemm parallelises over its output and im2col/col2im over
 * (image, channel) planes. db is parallel over k. Every sum runs in an order fixed by the shapes
 * (chunks, gemm paths), so results do not depend on the thread count.
 * 5×5 kernels at stride 1 with enough channels take the Winograd path instead (conv2d_winograd.cpp), db excepted,
 * when their inputs are finite: its transforms would turn an inf into NaN and spread a NaN to a tile's four outputs,
 * where the sums here give inf, and NaN only to the outputs whose window holds it.
 */
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels.h"
#include "openmp.h"
#include "parallel.h"

namespace deepnum {
namespace {

constexpr i64 kChunkElems = i64{1} << 18;     // target size of a chunk's col buffer (C·R·S x nb·P·Q)
constexpr i64 kPartialElems = i64{1} << 22;   // at most this many elements of per-chunk dw partial sums

struct ConvShape {
  i64 N, C, H, W, K, R, S, sh, sw, ph, pw, P, Q;
  i64 crs() const { return C * R * S; }
  i64 pq() const { return P * Q; }
  // Images per chunk: about kChunkElems of col, at least two chunks when N > 1 (work for two threads),
  // at most kPartialElems / (K·C·R·S) chunks, and chunks of equal size but the last.
  i64 chunk() const {
    const i64 max_chunks = std::max<i64>(kPartialElems / (K * crs()), 1);
    const i64 nb = std::max(std::clamp<i64>(kChunkElems / (crs() * pq()), 1, (N + 1) / 2),
                            (N + max_chunks - 1) / max_chunks);
    const i64 chunks = (N + nb - 1) / nb;
    return (N + chunks - 1) / chunks;
  }
};

// Output positions o in [0, n_out) whose input index o·stride + d lies in [0, n_in) form [lo, hi).
void valid_range(i64 n_out, i64 stride, i64 d, i64 n_in, i64& lo, i64& hi) {
  lo = d >= 0 ? 0 : (-d + stride - 1) / stride;
  hi = n_in - 1 - d < 0 ? 0 : std::min(n_out, (n_in - 1 - d) / stride + 1);
  lo = std::min(lo, hi);
}

// Rows r·S + s of col (row stride ldc), columns [0, P·Q), from one (H,W) plane of x.
template <class T>
DEEPNUM_SIMD void im2col_plane(T* col, i64 ldc, const T* x, const ConvShape& g) {
  for (i64 r = 0; r < g.R; ++r) {
    i64 p0, p1;
    valid_range(g.P, g.sh, r - g.ph, g.H, p0, p1);
    for (i64 s = 0; s < g.S; ++s) {
      i64 q0, q1;
      valid_range(g.Q, g.sw, s - g.pw, g.W, q0, q1);
      T* row = col + (r * g.S + s) * ldc;
      for (i64 p = 0; p < g.P; ++p) {
        T* dst = row + p * g.Q;
        if (p < p0 || p >= p1) {
          for (i64 q = 0; q < g.Q; ++q) dst[q] = T(0);
          continue;
        }
        for (i64 q = 0; q < q0; ++q) dst[q] = T(0);
        if (q0 < q1) {
          const T* src = x + (p * g.sh + r - g.ph) * g.W + (q0 * g.sw + s - g.pw);  // input of output q0
          if (g.sw == 1)  // a loop, not memcpy: the runs are short (Q values) and a call each costs more
            for (i64 q = q0; q < q1; ++q) dst[q] = src[q - q0];
          else
            for (i64 q = q0; q < q1; ++q) dst[q] = src[(q - q0) * g.sw];
        }
        for (i64 q = q1; q < g.Q; ++q) dst[q] = T(0);
      }
    }
  }
}

// One (H,W) plane of dx = the sum of rows r·S + s of dcol (row stride ldc) at their input positions.
template <class T>
DEEPNUM_SIMD void col2im_plane(T* dx, const T* dcol, i64 ldc, const ConvShape& g) {
  for (i64 i = 0; i < g.H * g.W; ++i) dx[i] = T(0);
  for (i64 r = 0; r < g.R; ++r) {
    i64 p0, p1;
    valid_range(g.P, g.sh, r - g.ph, g.H, p0, p1);
    for (i64 s = 0; s < g.S; ++s) {
      i64 q0, q1;
      valid_range(g.Q, g.sw, s - g.pw, g.W, q0, q1);
      if (q0 == q1) continue;
      const T* row = dcol + (r * g.S + s) * ldc;
      for (i64 p = p0; p < p1; ++p) {
        T* dst = dx + (p * g.sh + r - g.ph) * g.W + (q0 * g.sw + s - g.pw);  // input of output q0
        const T* src = row + p * g.Q + q0;
        if (g.sw == 1)
          for (i64 q = 0; q < q1 - q0; ++q) dst[q] += src[q];
        else
          for (i64 q = 0; q < q1 - q0; ++q) dst[q * g.sw] += src[q];
      }
    }
  }
}

// col (C·R·S, m·P·Q) for images [n0, n0 + m) of x.
template <class T>
void im2col(T* col, const T* x, i64 n0, i64 m, const ConvShape& g) {
  const i64 ld = m * g.pq(), rs = g.R * g.S;
#pragma omp parallel for collapse(2) if (m * g.crs() * g.pq() > kParallelMin && !omp_in_parallel())
  for (i64 i = 0; i < m; ++i)
    for (i64 c = 0; c < g.C; ++c)
      im2col_plane(col + c * rs * ld + i * g.pq(), ld, x + ((n0 + i) * g.C + c) * g.H * g.W, g);
}

// dst[j] = src[j] + add over n elements
template <class T>
DEEPNUM_SIMD void copy_plus(T* dst, const T* src, T add, i64 n) {
  for (i64 j = 0; j < n; ++j) dst[j] = src[j] + add;
}

// dst[j] += parts[0][j], then parts[1][j], ... (n parts, `size` apart), for j in [j0, j1)
template <class T>
DEEPNUM_SIMD void add_parts(T* dst, const T* parts, i64 n, i64 size, i64 j0, i64 j1) {
  for (i64 c = 0; c < n; ++c)
    for (i64 j = j0; j < j1; ++j) dst[j] += parts[c * size + j];
}

// Whether the n values at p are all finite (no inf, no NaN): no exponent field all ones.
template <class T>
DEEPNUM_SIMD bool all_finite(const T* p, i64 n) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr Bits exponent = static_cast<Bits>(sizeof(T) == 4 ? 0x7f800000u : 0x7ff0000000000000u);
  Bits special = 0;
  for (i64 i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, p + i, sizeof(T));
    special |= Bits((b & exponent) == exponent);
  }
  return special == 0;
}

// Sum over n of the N planes dy[n, k] (P·Q each), in double: eight partial sums by position, in order.
template <class T>
DEEPNUM_SIMD double plane_sum(const T* dy, i64 N, i64 plane, i64 stride) {
  double acc[8] = {};
  for (i64 n = 0; n < N; ++n) {
    const T* p = dy + n * stride;
    i64 j = 0;
    for (; j + 8 <= plane; j += 8)
      for (i64 l = 0; l < 8; ++l) acc[l] += static_cast<double>(p[j + l]);
    for (; j < plane; ++j) acc[j % 8] += static_cast<double>(p[j]);
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace

template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, i64 N, i64 C, i64 H, i64 W, i64 K, i64 R, i64 S,
                    i64 sh, i64 sw, i64 ph, i64 pw) {
  // x is (N,C,H,W), w is (K,C,R,S), b is (K,), y is (N,K,P,Q)
  if (conv2d_winograd_applies(N, C, H, W, K, R, S, sh, sw, ph, pw) && all_finite(x, N * C * H * W) &&
      all_finite(w, K * C * R * S))
    return conv2d_winograd_forward(y, x, w, b, N, C, H, W, K, ph, pw);
  const ConvShape g{N, C, H, W, K, R, S, sh, sw, ph, pw, (H + 2 * ph - R) / sh + 1, (W + 2 * pw - S) / sw + 1};
  const i64 nb = g.chunk(), PQ = g.pq(), chunks = (N + nb - 1) / nb;
  for_each_chunk(chunks, N * K * g.crs() * PQ, [&](i64 chunk) {
    const i64 n0 = chunk * nb, m = std::min(nb, N - n0), ld = m * PQ;
    T *col = thread_scratch<T, 0>(g.crs() * nb * PQ), *out = thread_scratch<T, 1>(K * nb * PQ);
    im2col(col, x, n0, m, g);
    gemm(out, w, col, false, false, K, ld, g.crs());
#pragma omp parallel for collapse(2) if (m * K * PQ > kParallelMin && !omp_in_parallel())
    for (i64 i = 0; i < m; ++i)
      for (i64 k = 0; k < K; ++k) copy_plus(y + ((n0 + i) * K + k) * PQ, out + k * ld + i * PQ, b[k], PQ);
  });
}

template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, i64 N, i64 C, i64 H, i64 W, i64 K,
                     i64 R, i64 S, i64 sh, i64 sw, i64 ph, i64 pw) {
  // dy is (N,K,P,Q), x and dx are (N,C,H,W), w and dw are (K,C,R,S), db is (K,); dx may be nullptr
  const ConvShape g{N, C, H, W, K, R, S, sh, sw, ph, pw, (H + 2 * ph - R) / sh + 1, (W + 2 * pw - S) / sw + 1};
  const i64 nb = g.chunk(), PQ = g.pq(), CRS = g.crs(), RS = R * S;

#pragma omp parallel for if (N * K * PQ > kParallelMin)
  for (i64 k = 0; k < K; ++k) db[k] = static_cast<T>(plane_sum(dy + k * PQ, N, PQ, K * PQ));
  if (conv2d_winograd_applies(N, C, H, W, K, R, S, sh, sw, ph, pw) && all_finite(dy, N * K * PQ) &&
      all_finite(x, N * C * H * W) && all_finite(w, K * CRS))
    return conv2d_winograd_backward(dx, dw, dy, x, w, N, C, H, W, K, ph, pw);

  // Chunk 0 writes dw, chunk c > 0 its partial sum part + (c - 1)·K·CRS; then dw += the parts in order.
  // col holds im2col(x) for dw, then is reused for dcol.
  const i64 chunks = (N + nb - 1) / nb;
  T* part = thread_scratch<T, 2>((chunks - 1) * K * CRS);
  for_each_chunk(chunks, N * K * CRS * PQ, [&](i64 chunk) {
    const i64 n0 = chunk * nb, m = std::min(nb, N - n0), ld = m * PQ;
    T *col = thread_scratch<T, 0>(CRS * nb * PQ), *dyc = thread_scratch<T, 1>(K * nb * PQ);
    im2col(col, x, n0, m, g);
#pragma omp parallel for collapse(2) if (m * K * PQ > kParallelMin && !omp_in_parallel())
    for (i64 i = 0; i < m; ++i)
      for (i64 k = 0; k < K; ++k)
        std::memcpy(dyc + k * ld + i * PQ, dy + ((n0 + i) * K + k) * PQ, PQ * sizeof(T));
    gemm(chunk == 0 ? dw : part + (chunk - 1) * K * CRS, dyc, col, false, true, K, CRS, ld);
    if (!dx) return;
    T* dcol = col;
    gemm(dcol, w, dyc, true, false, CRS, ld, K);
#pragma omp parallel for collapse(2) if (m * CRS * PQ > kParallelMin && !omp_in_parallel())
    for (i64 i = 0; i < m; ++i)
      for (i64 c = 0; c < C; ++c) col2im_plane(dx + ((n0 + i) * C + c) * H * W, dcol + c * RS * ld + i * PQ, ld, g);
  });
  parallel_ranges(K * CRS, (chunks - 1) * K * CRS, [&](i64 j0, i64 j1) { add_parts(dw, part, chunks - 1, K * CRS, j0, j1); });
}

DEEPNUM_INSTANTIATE(conv2d_forward);
DEEPNUM_INSTANTIATE(conv2d_backward);

}  // namespace deepnum
