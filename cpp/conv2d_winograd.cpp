/* conv2d, Winograd path: F(2×2, 5×5) for 5×5 kernels at stride 1 where conv2d_winograd_applies (conv2d.cpp
 * takes it there): 36 multiplies per 2×2 outputs and input channel instead of 100.
 * A 6×6 tile d of the zero-padded input, rows 2·tp.. and columns 2·tq.., gives the outputs (2·tp.., 2·tq..):
 *   y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        for a 5×5 filter g; Toom-Cook points 0, 1, −1, 1/2, −2 and ∞
 * summed over the input channels. The sum makes the elementwise products 36 matrix products, one per position
 * ξ = 6a + b of the 6×6 tile, over the T tiles of a chunk of images:
 *   M[ξ] (T, K) = V[ξ] (T, C) · U[ξ]ᵀ (C, K)      V: the input tiles transformed, U: the filters transformed
 * and y = b + Aᵀ M A tile by tile. Backward, the transposes of these steps:
 *   dM = A dy Aᵀ per 2×2 tile of dy;
 *   dw: dU[ξ] (C, K) = V[ξ]ᵀ · dM[ξ], then dw = Gᵀ dU G per filter;
 *   dx: dV[ξ] (T, C) = dM[ξ] · U[ξ], then B dV Bᵀ of each tile added at its place (tiles overlap by 4).
 * db is conv2d.cpp's. Layout: x (N,C,H,W), w (K,C,5,5), y (N,K,P,Q), all C-contiguous. Inside a chunk the
 * tiles are channels-last, V and M 36 planes (T, C) and (T, K), one per position (plane_stride apart), so that the
 * transforms run along contiguous channels and the 36 products are small-M GEMMs (gemm_small_m) reading both
 * operands in place.
 * Images go in chunks fixed by the shapes alone (V and M of a chunk ~ kChunkElems), a chunk per thread at a
 * time; dU sums each group of chunks in chunk order and the groups in group order, so that no result depends on
 * the thread count. The filter transforms and dw's run in double.
 * Error: Bᵀ and B scale a tile by up to 96 along each direction and G, Aᵀ undo it, so float32 results are off by
 * about 8e-7 (y, dx) and 1.6e-6 (dw) of each output's largest magnitude, some 4-13x the im2col path's rounding
 * (tests/test_ops.py, WINOGRAD_F32_ERROR states and checks the bounds); float64 matches the reference to 1e-12.
 */
#include <algorithm>
#include <cstring>

#include "gemm_internal.h"
#include "kernels.h"
#include "parallel.h"

// That no two iterations of the next loop touch the same element (see the transforms below), in GCC's and
// clang's words.
#if defined(__clang__)
#define DEEPNUM_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#define DEEPNUM_IVDEP _Pragma("GCC ivdep")
#endif

namespace deepnum {
namespace {

constexpr i64 kXi = 36;                       // positions of a 6×6 tile
// Where the path pays (measured on a 2-core Zen 3, AVX2, against the im2col path): at least 4 channels in and out
// (1-3 input channels: 1.3-4x slower; 4: about even), and at least 64 tiles in the batch, since the transformed
// filters (36 per filter pair) are reused once per tile (64 channels in and out at 40 tiles: 1.3-1.5x slower
// backward; 20 -> 40 channels at 160 tiles, network3's second layer at batch 10: 1.6x faster both ways).
constexpr i64 kMinChannels = 4;
constexpr i64 kMinBatchTiles = 64;
constexpr i64 kChunkElems = i64{1} << 17;     // target size of a chunk's V and M ...
constexpr i64 kMinTiles = 128;                // ... but at least this many tiles (rows of the products), if N has them
constexpr i64 kMaxGroups = 16;                // dw: at most this many partial sums of dU ...
constexpr i64 kPartialElems = i64{1} << 22;   // ... and at most this many elements of them

// Scratch slots (kernels.h: conv2d's are 0-9): held by the calling thread across the chunks ...
enum : int { kSlotU = 3, kSlotParts = 4 };
// ... and by each thread for its chunk.
enum : int { kSlotV = 5, kSlotM = 6, kSlotPad = 7, kSlotRows = 8, kSlotDu = 9 };

// o = G d: the filter transform along one direction, G (6×5) with rows (1/2, 0, 0, 0, 0), (1, 1, 1, 1, 1)/6,
// (1, -1, 1, -1, 1)/6, (1/15, 1/30, 1/60, 1/120, 1/240), (1/30, -1/15, 2/15, -4/15, 8/15), (0, 0, 0, 0, 1/2); its
// second and third rows from the sums of d's even and odd elements.
[[gnu::always_inline]] inline void g6(const double* d, double* o) {
  const double even = d[0] + d[2] + d[4], odd = d[1] + d[3];
  o[0] = 0.5 * d[0];
  o[1] = (even + odd) * (1. / 6);
  o[2] = (even - odd) * (1. / 6);
  o[3] = d[0] * (1. / 15) + d[1] * (1. / 30) + d[2] * (1. / 60) + d[3] * (1. / 120) + d[4] * (1. / 240);
  o[4] = d[0] * (1. / 30) - d[1] * (1. / 15) + d[2] * (2. / 15) - d[3] * (4. / 15) + d[4] * (8. / 15);
  o[5] = 0.5 * d[4];
}

// o = Gᵀ d (dw's transform along one direction), G's second and third columns from d[1] ± d[2].
[[gnu::always_inline]] inline void gt5(const double* d, double* o) {
  const double sum = (d[1] + d[2]) * (1. / 6), diff = (d[1] - d[2]) * (1. / 6);
  o[0] = 0.5 * d[0] + sum + d[3] * (1. / 15) + d[4] * (1. / 30);
  o[1] = diff + d[3] * (1. / 30) - d[4] * (1. / 15);
  o[2] = sum + d[3] * (1. / 60) + d[4] * (2. / 15);
  o[3] = diff + d[3] * (1. / 120) - d[4] * (4. / 15);
  o[4] = sum + d[3] * (1. / 240) + d[4] * (8. / 15) + 0.5 * d[5];
}

// v = Bᵀ d: the input transform along one direction.
template <class T>
[[gnu::always_inline]] inline void bt(const T* d, T* v) {
  v[0] = T(2) * d[0] - T(3) * d[1] - T(4) * d[2] + T(3) * d[3] + T(2) * d[4];
  v[1] = T(-2) * d[1] + d[2] + T(5) * d[3] + T(2) * d[4];
  v[2] = T(-2) * d[1] + T(5) * d[2] - d[3] - T(2) * d[4];
  v[3] = T(32) * d[1] + T(16) * d[2] - T(32) * d[3] - T(16) * d[4];
  v[4] = d[1] - T(2) * d[2] - d[3] + T(2) * d[4];
  v[5] = T(2) * d[1] - T(3) * d[2] - T(4) * d[3] + T(3) * d[4] + T(2) * d[5];
}

// Aᵀ m: the output transform along one direction, rows 0 and 1.
template <class T>
[[gnu::always_inline]] inline T at0(const T* m) {
  return m[0] + m[1] + m[2] + m[3] + m[4];
}
template <class T>
[[gnu::always_inline]] inline T at1(const T* m) {
  return m[1] - m[2] + T(0.5) * m[3] - T(2) * m[4] + m[5];
}

// o = A (x0, x1): the transpose of the output transform (dy's tiles for dw).
template <class T>
[[gnu::always_inline]] inline void a6(T x0, T x1, T* o) {
  o[0] = x0;
  o[1] = x0 + x1;
  o[2] = x0 - x1;
  o[3] = x0 + T(0.5) * x1;
  o[4] = x0 - T(2) * x1;
  o[5] = x1;
}

// One correlation of 5×5 filters at stride 1: x (N, C, H, W) zero-padded by ph, pw gives (N, K, P, Q), in
// TP × TQ tiles of 2×2 outputs per image (the last row and column of tiles reach past P and Q when they are odd).
struct Tiles {
  i64 N, C, H, W, K, ph, pw, P, Q, TP, TQ;
  Tiles(i64 N_, i64 C_, i64 H_, i64 W_, i64 K_, i64 ph_, i64 pw_)
      : N(N_), C(C_), H(H_), W(W_), K(K_), ph(ph_), pw(pw_), P(H + 2 * ph - 4), Q(W + 2 * pw - 4),
        TP((P + 1) / 2), TQ((Q + 1) / 2) {}
  i64 per_image() const { return TP * TQ; }
  i64 Hp() const { return 2 * TP + 4; }  // the zero-padded input plane that the tiles cover
  i64 Wp() const { return 2 * TQ + 4; }
  // Images per chunk: V and M of about kChunkElems, at least two chunks when N > 1, chunks of equal size but the last.
  i64 chunk() const {
    const i64 nb = std::clamp<i64>(std::max(kChunkElems / (kXi * (C + K) * per_image()), kMinTiles / per_image()), 1, (N + 1) / 2);
    const i64 chunks = (N + nb - 1) / nb;
    return (N + chunks - 1) / chunks;
  }
  i64 macs() const { return N * K * C * 25 * P * Q; }  // of the direct correlation, for for_each_chunk
};

// dst[i·ldd + j] = src[j·lds + i] for i < n, j < m: the (m, n) matrix at src (rows lds apart) transposed into
// (n, m) at dst (rows ldd apart). Blocks of 8×8 go through vector registers, in the three rounds of shuffles of
// the usual 8×8 transpose (pairs of elements, then pairs of pairs, then halves); the last n % 8 rows and m % 8
// columns of dst are copied element by element. (Element by element, with one side strided, the channels-last
// copies took some 7 instructions an element.)
template <class T>
DEEPNUM_SIMD void transpose(T* dst, i64 ldd, const T* src, i64 lds, i64 n, i64 m) {
  typedef T V __attribute__((vector_size(8 * sizeof(T))));
  i64 j = 0;
  for (; j + 8 <= m; j += 8) {
    i64 i = 0;
    for (; i + 8 <= n; i += 8) {
      V r[8], t[8], u[8];
      for (int k = 0; k < 8; ++k) std::memcpy(&r[k], src + (j + k) * lds + i, sizeof(V));
      for (int k = 0; k < 8; k += 2) {
        t[k] = __builtin_shufflevector(r[k], r[k + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[k + 1] = __builtin_shufflevector(r[k], r[k + 1], 2, 10, 3, 11, 6, 14, 7, 15);
      }
      for (int k = 0; k < 8; k += 4)
        for (int h = 0; h < 2; ++h) {
          u[k + 2 * h] = __builtin_shufflevector(t[k + h], t[k + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
          u[k + 2 * h + 1] = __builtin_shufflevector(t[k + h], t[k + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
      for (int k = 0; k < 4; ++k) {
        const V lo = __builtin_shufflevector(u[k], u[k + 4], 0, 1, 2, 3, 8, 9, 10, 11),
                hi = __builtin_shufflevector(u[k], u[k + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        std::memcpy(dst + (i + k) * ldd + j, &lo, sizeof(V));
        std::memcpy(dst + (i + k + 4) * ldd + j, &hi, sizeof(V));
      }
    }
    for (; i < n; ++i)
      for (int k = 0; k < 8; ++k) dst[i * ldd + j + k] = src[(j + k) * lds + i];
  }
  for (; j < m; ++j)
    for (i64 i = 0; i < n; ++i) dst[i * ldd + j] = src[j * lds + i];
}

// Calls f(j, at, stride, len) for the runs of a block's columns j0 + j .. j0 + j + len (of [j0, j0 + n)) whose
// filters lie in w at at, at + stride, ...: with the filters of column j = c·K + k (by_channel), a run of one
// channel c and consecutive k, C·25 apart; else (j = k·C + c, w's order) the one run of the block, 25 apart.
template <class F>
void filter_runs(i64 j0, i64 n, i64 K, i64 C, bool by_channel, const F& f) {
  if (!by_channel) return f(i64{0}, j0 * 25, i64{25}, n);
  for (i64 j = 0; j < n;) {
    const i64 c = (j0 + j) / K, k = (j0 + j) % K, len = std::min(K - k, n - j);
    f(j, (k * C + c) * 25, C * 25, len);
    j += len;
  }
}

// G g Gᵀ in double for the n ≤ kFilterBlock filters g of U's columns j0 .. j0 + n, U (36, K, C) or, by_channel,
// (36, C, K): element ξ of column j to u[ξ·ld + j - j0]. Column j is the filter w[k, c] (5×5) for j = k·C + c, or
// by_channel j = c·K + k. The filters are the vector lanes.
constexpr i64 kFilterBlock = 64;
template <class T>
DEEPNUM_SIMD void filter_block(T* u, i64 ld, const T* w, i64 j0, i64 n, i64 K, i64 C, bool by_channel) {
  T g[25][kFilterBlock];  // element rs of column j's filter at g[rs][j]
  filter_runs(j0, n, K, C, by_channel,
              [&](i64 j, i64 at, i64 stride, i64 len) { transpose(&g[0][j], kFilterBlock, w + at, stride, 25, len); });
  double gg[30][kFilterBlock];
  for (int s = 0; s < 5; ++s)  // G down the columns
    for (i64 j = 0; j < n; ++j) {
      double d[5], o[6];
      for (int r = 0; r < 5; ++r) d[r] = static_cast<double>(g[r * 5 + s][j]);
      g6(d, o);
      for (int a = 0; a < 6; ++a) gg[a * 5 + s][j] = o[a];
    }
  for (int a = 0; a < 6; ++a)  // then along the rows (six streams into u: see DEEPNUM_IVDEP)
DEEPNUM_IVDEP
    for (i64 j = 0; j < n; ++j) {
      double d[5], o[6];
      for (int s = 0; s < 5; ++s) d[s] = gg[a * 5 + s][j];
      g6(d, o);
      for (int b = 0; b < 6; ++b) u[(a * 6 + b) * ld + j] = static_cast<T>(o[b]);
    }
}

// dw of n ≤ kFilterBlock filters from their dU (element ξ of filter j at du[ξ·ld + j]): Gᵀ dU G in double, element
// (r, s) of filter j to dwt[(5·r + s)·kFilterBlock + j] (rounded to T).
template <class T>
DEEPNUM_SIMD void filter_gradient_block(T* dwt, const T* du, i64 ld, i64 n) {
  double t[30][kFilterBlock];
  for (int a = 0; a < 6; ++a)  // G along the rows
    for (i64 j = 0; j < n; ++j) {
      double d[6], o[5];
      for (int b = 0; b < 6; ++b) d[b] = static_cast<double>(du[(a * 6 + b) * ld + j]);
      gt5(d, o);
      for (int s = 0; s < 5; ++s) t[a * 5 + s][j] = o[s];
    }
  for (int s = 0; s < 5; ++s)  // then Gᵀ down the columns
    for (i64 j = 0; j < n; ++j) {
      double d[6], o[5];
      for (int a = 0; a < 6; ++a) d[a] = t[a * 5 + s][j];
      gt5(d, o);
      for (int r = 0; r < 5; ++r) dwt[(r * 5 + s) * kFilterBlock + j] = static_cast<T>(o[r]);
    }
}

// Filters worth a second thread for their transforms.
[[maybe_unused]] constexpr i64 kParallelFilters = 256;  // used by `omp` pragmas only

// U (36, K, C), or by_channel (36, C, K) (the forward's layout), = G g Gᵀ of each filter g = w[k, c] (5×5).
template <class T>
void filter_transform(T* U, const T* w, i64 K, i64 C, bool by_channel) {
  const i64 filters = K * C, blocks = (filters + kFilterBlock - 1) / kFilterBlock;
#pragma omp parallel for if (filters > kParallelFilters && !omp_in_parallel())
  for (i64 i = 0; i < blocks; ++i) {
    const i64 j = i * kFilterBlock;
    filter_block(U + j, filters, w, j, std::min(kFilterBlock, filters - j), K, C, by_channel);
  }
}

// The transforms run channels-last (NHWC), so that their inner loops run along the channels, contiguous:
// x's planes are too small for vectors along a row of tiles (4-6 tiles). Their loops write six or more streams
// into one buffer at run-time offsets, more than GCC checks for overlap before it vectorizes: DEEPNUM_IVDEP says
// that no two iterations touch the same element (the buffers are distinct and each stream is its own).

// xp (rows, cols, C) = image x (C, rows_x, cols_x) channels-last at (r0, c0), zeros around it: a transpose of x's
// (C, rows_x·cols_x) at once where its rows fill xp's (cols = cols_x), else row by row.
template <class T>
void channels_last(T* xp, i64 rows, i64 cols, const T* x, i64 C, i64 rows_x, i64 cols_x, i64 r0, i64 c0) {
  const i64 plane = rows_x * cols_x;
  if (rows != rows_x || cols != cols_x) std::fill(xp, xp + rows * cols * C, T(0));
  if (cols == cols_x) return transpose(xp + r0 * cols * C, C, x, plane, plane, C);
  for (i64 h = 0; h < rows_x; ++h) transpose(xp + ((h + r0) * cols + c0) * C, C, x + h * cols_x, plane, cols_x, C);
}

// The tiles of one image, transformed: Bᵀ d B of tile t = tp·TQ + tq, channel c, goes to v[ξ·ps + t·C + c].
// xp: the image channels-last and zero-padded (Hp, Wp, C); rows: 6·Wp·C scratch.
template <class T>
DEEPNUM_SIMD void input_tiles(T* v, i64 ps, const T* xp, const Tiles& g, T* rows) {
  const i64 C = g.C, row = g.Wp() * C;
  for (i64 tp = 0; tp < g.TP; ++tp) {
    const T* in = xp + 2 * tp * row;
DEEPNUM_IVDEP
    for (i64 j = 0; j < row; ++j) {  // Bᵀ down the six rows of the tiles, every column and channel at once
      T d[6], e[6];
      for (int r = 0; r < 6; ++r) d[r] = in[r * row + j];
      bt(d, e);
      for (int a = 0; a < 6; ++a) rows[a * row + j] = e[a];
    }
    for (int a = 0; a < 6; ++a)  // then B along each of them, a tile (two columns further) at a time
      for (i64 tq = 0; tq < g.TQ; ++tq) {
        const T* in_a = rows + a * row + 2 * tq * C;
        T* out = v + 6 * a * ps + (tp * g.TQ + tq) * C;
DEEPNUM_IVDEP
        for (i64 c = 0; c < C; ++c) {
          T d[6], e[6];
          for (int s = 0; s < 6; ++s) d[s] = in_a[s * C + c];
          bt(d, e);
          for (int b = 0; b < 6; ++b) out[b * ps + c] = e[b];
        }
      }
  }
}

// One image's outputs Aᵀ m A of every tile, channels-last: yp (2·TP, 2·TQ, K), m(ξ) of tile t, channel k at
// m[ξ·ps + t·K + k].
template <class T>
DEEPNUM_SIMD void output_tiles(T* yp, const T* m, i64 ps, const Tiles& g) {
  const i64 K = g.K, row = 2 * g.TQ * K;
  for (i64 tp = 0; tp < g.TP; ++tp)
    for (i64 tq = 0; tq < g.TQ; ++tq) {
      const T* in = m + (tp * g.TQ + tq) * K;
      T* out = yp + 2 * tp * row + 2 * tq * K;
DEEPNUM_IVDEP
      for (i64 k = 0; k < K; ++k) {
        T s0[6], s1[6];
#pragma GCC unroll 6
        for (int b = 0; b < 6; ++b) {
          T c[6];
#pragma GCC unroll 6
          for (int a = 0; a < 6; ++a) c[a] = in[(6 * a + b) * ps + k];
          s0[b] = at0(c);
          s1[b] = at1(c);
        }
        out[k] = at0(s0);
        out[K + k] = at1(s0);
        out[row + k] = at0(s1);
        out[row + K + k] = at1(s1);
      }
    }
}

// y[j] += bias over n elements
template <class T>
DEEPNUM_SIMD void add_bias(T* y, T bias, i64 n) {
  for (i64 j = 0; j < n; ++j) y[j] += bias;
}

// y (K, P, Q) = b + yp (2·TP, 2·TQ, K) channels-first (the last row and column dropped when P, Q are odd): a
// transpose of yp's first P·Q rows at once when Q is even, else row by row; then b (0 without b, as the sums of
// the other paths start: -0 becomes 0).
template <class T>
void channels_first(T* y, const T* yp, const T* b, const Tiles& g) {
  const i64 K = g.K, W2 = 2 * g.TQ, plane = g.P * g.Q;
  if (W2 == g.Q)
    transpose(y, plane, yp, K, K, plane);
  else
    for (i64 p = 0; p < g.P; ++p) transpose(y + p * g.Q, plane, yp + p * W2 * K, K, K, g.Q);
  for (i64 k = 0; k < K; ++k) add_bias(y + k * plane, b ? b[k] : T(0), plane);
}

// The 2×2 tiles of one image's dy, channels-last (2·TP, 2·TQ, K) with zeros past P and Q, transformed for dw:
// A d Aᵀ of tile t, channel k, goes to dm[ξ·ps + t·K + k].
template <class T>
DEEPNUM_SIMD void gradient_tiles(T* dm, i64 ps, const T* dyp, const Tiles& g) {
  const i64 K = g.K, row = 2 * g.TQ * K;
  for (i64 tp = 0; tp < g.TP; ++tp)
    for (i64 tq = 0; tq < g.TQ; ++tq) {
      const T* in = dyp + 2 * tp * row + 2 * tq * K;
      T* out = dm + (tp * g.TQ + tq) * K;
DEEPNUM_IVDEP
      for (i64 k = 0; k < K; ++k) {
        T e0[6], e1[6], o[6];
        a6(in[k], in[row + k], e0);  // A down the two rows, for each of the two columns
        a6(in[K + k], in[row + K + k], e1);
#pragma GCC unroll 6
        for (int a = 0; a < 6; ++a) {
          a6(e0[a], e1[a], o);
#pragma GCC unroll 6
          for (int b = 0; b < 6; ++b) out[(6 * a + b) * ps + k] = o[b];
        }
      }
    }
}

// v = B d: the transpose of the input transform along one direction.
template <class T>
[[gnu::always_inline]] inline void b6(const T* d, T* v) {
  v[0] = T(2) * d[0];
  v[1] = T(-3) * d[0] - T(2) * d[1] - T(2) * d[2] + T(32) * d[3] + d[4] + T(2) * d[5];
  v[2] = T(-4) * d[0] + d[1] + T(5) * d[2] + T(16) * d[3] - T(2) * d[4] - T(3) * d[5];
  v[3] = T(3) * d[0] + T(5) * d[1] - d[2] - T(32) * d[3] - d[4] - T(4) * d[5];
  v[4] = T(2) * d[0] + T(2) * d[1] - T(2) * d[2] - T(16) * d[3] + T(2) * d[4] + T(3) * d[5];
  v[5] = T(2) * d[5];
}

// One image's dx, channels-last and zero-padded as its x (Hp, Wp, C), from the gradient dv of its transformed
// tiles (dv(ξ) of tile t, channel c at dv[ξ·ps + t·C + c]): the sum over the tiles of B dv Bᵀ at each tile's
// place (the tiles overlap by four rows and columns). rows: 36·C scratch.
template <class T>
DEEPNUM_SIMD void input_gradient(T* dxp, const T* dv, i64 ps, const Tiles& g, T* rows) {
  const i64 C = g.C, row = g.Wp() * C;
  std::fill(dxp, dxp + g.Hp() * row, T(0));
  for (i64 tp = 0; tp < g.TP; ++tp)
    for (i64 tq = 0; tq < g.TQ; ++tq) {
      const T* in = dv + (tp * g.TQ + tq) * C;
      for (int a = 0; a < 6; ++a)  // B along each row a of the tile: rows (a, s, c)
DEEPNUM_IVDEP
        for (i64 c = 0; c < C; ++c) {
          T d[6], e[6];
#pragma GCC unroll 6
          for (int b = 0; b < 6; ++b) d[b] = in[(6 * a + b) * ps + c];
          b6(d, e);
#pragma GCC unroll 6
          for (int s = 0; s < 6; ++s) rows[(6 * a + s) * C + c] = e[s];
        }
      T* out = dxp + 2 * tp * row + 2 * tq * C;
      for (int s = 0; s < 6; ++s)  // then B down each column s, added at the tile's place
DEEPNUM_IVDEP
        for (i64 c = 0; c < C; ++c) {
          T d[6], e[6];
#pragma GCC unroll 6
          for (int a = 0; a < 6; ++a) d[a] = rows[(6 * a + s) * C + c];
          b6(d, e);
#pragma GCC unroll 6
          for (int r = 0; r < 6; ++r) out[r * row + s * C + c] += e[r];
        }
    }
}

// x (C, H, W) = the (H, W) window at (r0, c0) of xp (rows, cols, C), channels-first: a transpose of H rows of xp
// at once where W fills them (cols = W), else row by row.
template <class T>
void crop_channels_first(T* x, const T* xp, i64 cols, i64 C, i64 H, i64 W, i64 r0, i64 c0) {
  if (cols == W) return transpose(x, H * W, xp + r0 * cols * C, C, C, H * W);
  for (i64 h = 0; h < H; ++h) transpose(x + h * W, H * W, xp + ((h + r0) * cols + c0) * C, C, C, W);
}

// dst[j] += src[j] over n elements
template <class T>
DEEPNUM_SIMD void add_to(T* dst, const T* src, i64 n) {
  for (i64 j = 0; j < n; ++j) dst[j] += src[j];
}

// The distance between two positions' planes of a chunk's V or M (n elements each): n rounded up to an odd number
// of cache lines, so that a tile's 36 elements (one per plane, which the transforms read or write together) lie
// in 36 different sets of the L1 cache. At a multiple of 4 KiB they all fell in one set, which holds 8 lines: M of
// 8 images of 16 tiles and 40 channels (20 KiB a plane, any batch from 16 on) made the output transform 37% of
// the forward's time at batch 1000, more than its products.
template <class T>
constexpr i64 plane_stride(i64 n) {
  constexpr i64 line = 64 / sizeof(T);
  return ((n + line - 1) / line | 1) * line;
}

// V (36 planes ps apart, each m·tiles × C) for images [n0, n0 + m) of x (g's input). xp: Hp·Wp·C and rows:
// 6·Wp·C scratch.
template <class T>
void transform_inputs(T* V, i64 ps, const T* x, i64 n0, i64 m, const Tiles& g, T* xp, T* rows) {
  const i64 tiles = g.per_image();
  for (i64 i = 0; i < m; ++i) {
    channels_last(xp, g.Hp(), g.Wp(), x + (n0 + i) * g.C * g.H * g.W, g.C, g.H, g.W, g.ph, g.pw);
    input_tiles(V + i * tiles * g.C, ps, xp, g, rows);
  }
}

// A chunk's buffers (this thread's): V (36 planes vs apart, of nb·tiles × C), M or dM (36 planes ms apart, of
// nb·tiles × K), xp (a channels-last padded image, or 4·tiles·K for the output transform) and rows (six of its
// rows, for the input transform).
template <class T>
struct ChunkScratch {
  i64 vs, ms;
  T *V, *M, *xp, *rows;
  ChunkScratch(const Tiles& g, i64 nb)
      : vs(plane_stride<T>(nb * g.per_image() * g.C)), ms(plane_stride<T>(nb * g.per_image() * g.K)),
        V(thread_scratch<T, kSlotV>(kXi * vs)), M(thread_scratch<T, kSlotM>(kXi * ms)),
        xp(thread_scratch<T, kSlotPad>(std::max(g.Hp() * g.Wp() * g.C, 4 * g.per_image() * g.K))),
        rows(thread_scratch<T, kSlotRows>(6 * g.Wp() * g.C)) {}
};

// y (N, K, P, Q) = the correlation of x (g's input) with the filters w (K, C, 5, 5), plus b.
template <class T>
void correlate(T* y, const T* x, const T* w, const T* b, const Tiles& g) {
  const i64 nb = g.chunk(), chunks = (g.N + nb - 1) / nb, tiles = g.per_image(), C = g.C, K = g.K;
  T* Ut = thread_scratch<T, kSlotU>(kXi * C * K);
  filter_transform(Ut, w, K, C, true);
  for_each_chunk(chunks, g.macs(), [&](i64 chunk) {
    const i64 n0 = chunk * nb, m = std::min(nb, g.N - n0), ld = m * tiles;
    const ChunkScratch<T> s(g, nb);
    T *V = s.V, *M = s.M, *xp = s.xp;
    transform_inputs(V, s.vs, x, n0, m, g, xp, s.rows);
    for (i64 xi = 0; xi < kXi; ++xi)
      gemm_detail::gemm_small_m<T>(M + xi * s.ms, {V + xi * s.vs, C, 1}, {Ut + xi * C * K, K, 1}, ld, K, C);
    for (i64 i = 0; i < m; ++i) {
      output_tiles(xp, M + i * tiles * K, s.ms, g);
      channels_first(y + (n0 + i) * K * g.P * g.Q, xp, b, g);
    }
  });
}

}  // namespace

bool conv2d_winograd_applies(i64 N, i64 C, i64 H, i64 W, i64 K, i64 R, i64 S, i64 sh, i64 sw, i64 ph, i64 pw) {
  return R == 5 && S == 5 && sh == 1 && sw == 1 && C >= kMinChannels && K >= kMinChannels &&
         N * Tiles(N, C, H, W, K, ph, pw).per_image() >= kMinBatchTiles;
}

template <class T>
void conv2d_winograd_forward(T* y, const T* x, const T* w, const T* b, i64 N, i64 C, i64 H, i64 W, i64 K, i64 ph,
                             i64 pw) {
  // x is (N,C,H,W), w is (K,C,5,5), b is (K,), y is (N,K,P,Q)
  correlate(y, x, w, b, Tiles(N, C, H, W, K, ph, pw));
}

template <class T>
void conv2d_winograd_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, i64 N, i64 C, i64 H, i64 W, i64 K,
                              i64 ph, i64 pw) {
  // dy is (N,K,P,Q), x and dx are (N,C,H,W), w and dw are (K,C,5,5); dx may be nullptr
  const Tiles g(N, C, H, W, K, ph, pw);
  const i64 nb = g.chunk(), chunks = (N + nb - 1) / nb, tiles = g.per_image(), size = kXi * K * C;
  // dU: group i sums its chunks [i·chunks/groups, (i+1)·chunks/groups) in order into parts + i·size.
  const i64 groups = std::clamp<i64>(std::min(kMaxGroups, kPartialElems / size), 1, chunks);
  T* parts = thread_scratch<T, kSlotParts>(groups * size);
  T* U = dx ? thread_scratch<T, kSlotU>(size) : nullptr;
  if (dx) filter_transform(U, w, K, C, false);
  for_each_chunk(groups, g.macs(), [&](i64 group) {
    T* sum = parts + group * size;
    for (i64 chunk = group * chunks / groups; chunk < (group + 1) * chunks / groups; ++chunk) {
      const i64 n0 = chunk * nb, m = std::min(nb, N - n0), ld = m * tiles;
      const ChunkScratch<T> s(g, nb);
      T *V = s.V, *dM = s.M, *xp = s.xp, *rows = s.rows;
      transform_inputs(V, s.vs, x, n0, m, g, xp, rows);
      for (i64 i = 0; i < m; ++i) {
        channels_last(xp, 2 * g.TP, 2 * g.TQ, dy + (n0 + i) * K * g.P * g.Q, K, g.P, g.Q, 0, 0);
        gradient_tiles(dM + i * tiles * K, s.ms, xp, g);
      }
      const bool first = chunk == group * chunks / groups;
      T* out = first ? sum : thread_scratch<T, kSlotDu>(size);
      // Position by position, dU and then dV (m·tiles × C) = dM · Uᵀ, which takes the place of V's plane, read
      // by dU just before: the plane of dM is read twice while it is in the L1 cache.
      for (i64 xi = 0; xi < kXi; ++xi) {
        gemm_detail::gemm_small_m<T>(out + xi * C * K, {V + xi * s.vs, 1, C}, {dM + xi * s.ms, K, 1}, C, K, ld);
        if (dx)
          gemm_detail::gemm_small_m<T>(V + xi * s.vs, {dM + xi * s.ms, K, 1}, {U + xi * K * C, C, 1}, ld, C, K);
      }
      if (!first) add_to(sum, out, size);
      if (!dx) continue;
      const T* dV = V;
      for (i64 i = 0; i < m; ++i) {
        input_gradient(xp, dV + i * tiles * C, s.vs, g, rows);
        crop_channels_first(dx + (n0 + i) * C * H * W, xp, g.Wp(), C, H, W, ph, pw);
      }
    }
  });
  for (i64 i = 1; i < groups; ++i) add_to(parts, parts + i * size, size);
  // dw = Gᵀ dU G of each filter; dU is (36, C, K), so the filters of a block are j = c·K + k.
  const i64 filters = K * C, blocks = (filters + kFilterBlock - 1) / kFilterBlock;
#pragma omp parallel for if (filters > kParallelFilters)
  for (i64 i = 0; i < blocks; ++i) {
    const i64 j0 = i * kFilterBlock, n = std::min(kFilterBlock, filters - j0);
    T dwt[25 * kFilterBlock];
    filter_gradient_block(dwt, parts + j0, filters, n);
    filter_runs(j0, n, K, C, true, [&](i64 j, i64 at, i64 stride, i64 len) {
      transpose(dw + at, stride, dwt + j, kFilterBlock, len, 25);
    });
  }
}

DEEPNUM_INSTANTIATE(conv2d_winograd_forward);
DEEPNUM_INSTANTIATE(conv2d_winograd_backward);

}  // namespace deepnum
