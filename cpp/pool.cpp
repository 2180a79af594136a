/* max_pool2d: max over (size_h, size_w) windows with stride, no padding, NCHW.
 *   forward:  y[n,c,p,q] = max of the window at (p·sh, q·sw); argmax = h·W + w of that maximum
 *             inside its (H,W) plane. The first maximum in row-major window order wins and a NaN
 *             wins over any number (the first NaN), as in _reference.max_pool2d_forward.
 *   backward: dx = 0, then dx[n,c][argmax] += dy for every output, in (p,q) order.
 * The forward has a branch-free vector variant for 2x2 windows with stride 2 (the seed models').
 * Layout: x and dx (N,C,H,W), y, dy and argmax (N,C,P,Q). Both passes are parallel over (n,c)
 * planes, so no two threads write the same element.
 */
#include <cstdint>
#include <cstring>

#include "kernels.h"
#include "parallel.h"

namespace deepnum {
namespace {

// One (H,W) plane of x into one (P,Q) plane of y and argmax.
template <class T>
DEEPNUM_SIMD void pool_plane(T* y, i64* argmax, const T* x, i64 W, i64 P, i64 Q, i64 size_h, i64 size_w, i64 sh, i64 sw) {
  for (i64 p = 0; p < P; ++p)
    for (i64 q = 0; q < Q; ++q) {
      const i64 h0 = p * sh, w0 = q * sw;
      T best = x[h0 * W + w0];
      i64 best_idx = h0 * W + w0;
      for (i64 r = 0; r < size_h; ++r)
        for (i64 s = 0; s < size_w; ++s) {
          const i64 idx = (h0 + r) * W + w0 + s;
          const T v = x[idx];
          // branch-free (selects, not jumps): ties and zeros after relu are common and unpredictable
          const bool take = (v > best) | ((v != v) & (best == best));
          best = take ? v : best;
          best_idx = take ? idx : best_idx;
        }
      y[p * Q + q] = best;
      argmax[p * Q + q] = best_idx;
    }
}

// Vectors of 8 T and of 8 integers as wide as T (what comparisons of two T vectors return).
template <class T>
struct Lanes;
template <>
struct Lanes<float> {
  using S = std::int32_t;
  typedef float V __attribute__((vector_size(32)));
  typedef S I __attribute__((vector_size(32)));
};
template <>
struct Lanes<double> {
  using S = std::int64_t;
  typedef double V __attribute__((vector_size(64)));
  typedef S I __attribute__((vector_size(64)));
};
typedef i64 I64x8 __attribute__((vector_size(64)));

// m = the maximum of a window (a, b, c, d in row-major order) by the comparisons of pool_plane, and off = the
// offset of the first element equal to it (or, when it is a NaN, the first NaN): the same choice.
// T is a vector type (Lanes<·>::V), I the matching integer vector; all by reference, since a vector argument or
// result wider than the baseline's changes the ABI (GCC's -Wpsabi).
template <class T, class I, class S>
[[gnu::always_inline]] inline void max4(T& m, I& off, const T& a, const T& b, const T& c, const T& d, S W) {
  m = a;
  m = ((b > m) | ((b != b) & (m == m))) ? b : m;
  m = ((c > m) | ((c != c) & (m == m))) ? c : m;
  m = ((d > m) | ((d != d) & (m == m))) ? d : m;
  off = ((a == m) | (a != a)) ? I{} : ((b == m) | (b != b)) ? I{} + 1 : ((c == m) | (c != c)) ? I{} + W : I{} + (W + 1);
}

// Eight windows of a 2x2, stride-2 pooling: rows r0 and r1 from column 0 on (16 values each: 8 at r0 and 8 at
// r0 + half, half = 8 within a row or 2W for the windows of the next row pair) into y[0..8) and argmax[0..8) =
// base + the window's flat offset. The row pairs are deinterleaved into the four window positions and max4
// chooses as pool_plane would, in vector registers, without a branch.
template <class T>
[[gnu::always_inline]] inline void pool8_2x2(T* y, i64* argmax, const T* r0, const T* r1, i64 W, i64 base,
                                             i64 half = 8) {
  using V = typename Lanes<T>::V;
  using I = typename Lanes<T>::I;
  const I64x8 lane = I64x8{0, 2, 4, 6, 0, 2, 4, 6} + I64x8{0, 0, 0, 0, 1, 1, 1, 1} * half;
  V u0, u1, v0, v1;
  std::memcpy(&u0, r0, sizeof(V));
  std::memcpy(&u1, r0 + half, sizeof(V));
  std::memcpy(&v0, r1, sizeof(V));
  std::memcpy(&v1, r1 + half, sizeof(V));
  // the even and the odd lanes of each row pair (__builtin_shufflevector: GCC 12 and clang)
  V m;
  I off;
  max4(m, off, V(__builtin_shufflevector(u0, u1, 0, 2, 4, 6, 8, 10, 12, 14)),
       V(__builtin_shufflevector(u0, u1, 1, 3, 5, 7, 9, 11, 13, 15)),
       V(__builtin_shufflevector(v0, v1, 0, 2, 4, 6, 8, 10, 12, 14)),
       V(__builtin_shufflevector(v0, v1, 1, 3, 5, 7, 9, 11, 13, 15)), static_cast<typename Lanes<T>::S>(W));
  const I64x8 idx = __builtin_convertvector(off, I64x8) + base + lane;
  std::memcpy(y, &m, sizeof(V));
  std::memcpy(argmax, &idx, sizeof(idx));
}

// The seed models' 2x2 windows with stride 2, 8 outputs at a time, so that no output takes a data-dependent
// branch (ties and the zeros after a relu make such branches unpredictable: they cost 4x the vector work on real
// activations). A row's last Q % 8 outputs: when Q >= 8, one more group of 8 that ends at the row's end
// (recomputing a few outputs the same way); at Q = 4 (8x8 planes: the seeds' second pooling) two rows at a time;
// otherwise through zero-padded copies of the windows. The copies cost ~25 ns a row (the vector loads wait on the
// copy's narrower stores): most of a 24x24 or 8x8 plane's time before the other ways; pool_plane's selects are
// slower still (~15 ns an output).
template <class T>
DEEPNUM_SIMD void pool_plane_2x2(T* y, i64* argmax, const T* x, i64 W, i64 P, i64 Q) {
  for (i64 p = 0; p < P; ++p) {
    const T *r0 = x + 2 * p * W, *r1 = r0 + W;
    const i64 base = 2 * p * W;
    if (Q == 4 && p + 1 < P) {  // rows p and p + 1 of y, contiguous
      pool8_2x2(y + p * Q, argmax + p * Q, r0, r1, W, base, 2 * W);
      ++p;
      continue;
    }
    if (Q >= 8) {
      for (i64 q0 = 0; q0 < Q; q0 += 8) {
        const i64 q = q0 + 8 <= Q ? q0 : Q - 8;
        pool8_2x2(y + p * Q + q, argmax + p * Q + q, r0 + 2 * q, r1 + 2 * q, W, base + 2 * q);
      }
      continue;
    }
    T t0[16] = {}, t1[16] = {}, ty[8];
    i64 ta[8];
    std::memcpy(t0, r0, 2 * Q * sizeof(T));
    std::memcpy(t1, r1, 2 * Q * sizeof(T));
    pool8_2x2(ty, ta, t0, t1, W, base);
    std::memcpy(y + p * Q, ty, Q * sizeof(T));
    std::memcpy(argmax + p * Q, ta, Q * sizeof(i64));
  }
}

}  // namespace

template <class T>
void max_pool2d_forward(T* y, i64* argmax, const T* x, i64 N, i64 C, i64 H, i64 W, i64 size_h, i64 size_w, i64 sh,
                        i64 sw) {
  // x is (N,C,H,W); y and argmax are (N,C,P,Q)
  const i64 P = (H - size_h) / sh + 1, Q = (W - size_w) / sw + 1;
#pragma omp parallel for if (N * C * P * Q * size_h * size_w > kParallelMin)
  for (i64 nc = 0; nc < N * C; ++nc) {
    if (size_h == 2 && size_w == 2 && sh == 2 && sw == 2)
      pool_plane_2x2(y + nc * P * Q, argmax + nc * P * Q, x + nc * H * W, W, P, Q);
    else
      pool_plane(y + nc * P * Q, argmax + nc * P * Q, x + nc * H * W, W, P, Q, size_h, size_w, sh, sw);
  }
}

template <class T>
void max_pool2d_backward(T* dx, const T* dy, const i64* argmax, i64 N, i64 C, i64 H, i64 W, i64 P, i64 Q) {
  // dy and argmax are (N,C,P,Q), dx is (N,C,H,W)
  const i64 HW = H * W, PQ = P * Q;
  int bad = 0;
#pragma omp parallel for reduction(| : bad) if (N * C * (HW + PQ) > kParallelMin)
  for (i64 nc = 0; nc < N * C; ++nc) {
    T* d = dx + nc * HW;
    const T* g = dy + nc * PQ;
    const i64* idx = argmax + nc * PQ;
    for (i64 i = 0; i < HW; ++i) d[i] = T(0);
    for (i64 j = 0; j < PQ; ++j) {
      if (idx[j] < 0 || idx[j] >= HW) {
        bad = 1;
        continue;
      }
      d[idx[j]] += g[j];
    }
  }
  if (bad) check_argmax("max_pool2d_backward", argmax, N * C * PQ, HW);  // the first bad index, serially
}

DEEPNUM_INSTANTIATE(max_pool2d_forward);
DEEPNUM_INSTANTIATE(max_pool2d_backward);

}  // namespace deepnum
