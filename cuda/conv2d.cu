/* conv2d: 2-D cross-correlation with stride and zero padding, NCHW, via im2col + the tiled gemm (gemm.cu).
 *   forward:  y[n,k,p,q] = b[k] + sum over c,r,s of w[k,c,r,s] · x[n, c, p·sh - ph + r, q·sw - pw + s]
 *   backward: dx, dw, db, all written with `=`.
 * Layout: x (N,C,H,W), w (K,C,R,S) = (K, C·R·S), y (N,K,P,Q), all C-contiguous on the device.
 * As cpp/conv2d.cpp: images go in chunks of nb (fixed by the shapes: C·R·S·nb·P·Q ~ limits().conv_chunk_elems);
 * for a chunk,
 * im2col builds col (C·R·S, nb·P·Q), one column per output pixel, and one gemm does the work:
 *   y   (K, nb·PQ)  = w · col                  then gathered into (n, k, p, q) order plus b
 *   dw (K, C·R·S) += dy (K, nb·PQ) · colᵀ       chunks added in order (cuda::gemm_accumulate)
 *   dcol          = wᵀ · dy                    then col2im gathers it back into dx
 * Every kernel is a grid-stride loop over what it writes: col2im gathers the (r, s) contributions of each dx
 * element in order (no atomics), db is one block per output channel with a fixed-order block sum in double.
 * Scratch: col (C·R·S x nb·P·Q) and one (K x nb·P·Q) buffer per call, from the stream-ordered pool (memory.cpp).
 */
#include "common.cuh"

namespace deepnum {
namespace cuda {
namespace {


struct ConvShape {
  i64 N, C, H, W, K, R, S, sh, sw, ph, pw, P, Q;
  __host__ __device__ i64 crs() const { return C * R * S; }
  __host__ __device__ i64 pq() const { return P * Q; }
  i64 chunk() const {
    return std::clamp<i64>(limits().conv_chunk_elems / (std::max(C * R * S, K) * P * Q), 1, N);
  }
};

// col (C·R·S, m·P·Q) for images [n0, n0 + m) of x
template <class T>
__global__ void im2col_kernel(T* col, const T* x, i64 n0, i64 m, ConvShape g) {
  const i64 PQ = g.pq(), ld = m * PQ, total = g.crs() * ld;
  for (i64 e = grid_start(); e < total; e += grid_stride()) {
    const i64 row = e / ld, colx = e % ld;
    const i64 c = row / (g.R * g.S), r = (row / g.S) % g.R, s = row % g.S;
    const i64 i = colx / PQ, p = (colx / g.Q) % g.P, q = colx % g.Q;
    const i64 h = p * g.sh - g.ph + r, w = q * g.sw - g.pw + s;
    col[e] = (h >= 0 && h < g.H && w >= 0 && w < g.W) ? x[(((n0 + i) * g.C + c) * g.H + h) * g.W + w] : T(0);
  }
}

// y[n0 + i, k] = out (K, m·PQ) columns of image i, plus b[k]
template <class T>
__global__ void scatter_bias_kernel(T* y, const T* out, const T* b, i64 n0, i64 m, i64 K, i64 PQ) {
  const i64 ld = m * PQ, total = m * K * PQ;
  for (i64 e = grid_start(); e < total; e += grid_stride()) {
    const i64 i = e / (K * PQ), k = (e / PQ) % K, pq = e % PQ;
    y[n0 * K * PQ + e] = out[k * ld + i * PQ + pq] + b[k];
  }
}

// dyc (K, m·PQ) = dy[n0 + i, k] laid side by side
template <class T>
__global__ void gather_dy_kernel(T* dyc, const T* dy, i64 n0, i64 m, i64 K, i64 PQ) {
  const i64 ld = m * PQ, total = K * ld;
  for (i64 e = grid_start(); e < total; e += grid_stride()) {
    const i64 k = e / ld, i = (e % ld) / PQ, pq = e % PQ;
    dyc[e] = dy[((n0 + i) * K + k) * PQ + pq];
  }
}

// dx of images [n0, n0 + m): each element sums its (r, s) entries of dcol (C·R·S, m·PQ) in order
template <class T>
__global__ void col2im_kernel(T* dx, const T* dcol, i64 n0, i64 m, ConvShape g) {
  const i64 PQ = g.pq(), ld = m * PQ, HW = g.H * g.W, total = m * g.C * HW;
  for (i64 e = grid_start(); e < total; e += grid_stride()) {
    const i64 i = e / (g.C * HW), c = (e / HW) % g.C, h = (e % HW) / g.W, w = e % g.W;
    T acc = T(0);
    for (i64 r = 0; r < g.R; ++r) {
      const i64 hp = h + g.ph - r;  // = p·sh
      if (hp < 0 || hp % g.sh != 0 || hp / g.sh >= g.P) continue;
      const i64 p = hp / g.sh;
      for (i64 s = 0; s < g.S; ++s) {
        const i64 wq = w + g.pw - s;  // = q·sw
        if (wq < 0 || wq % g.sw != 0 || wq / g.sw >= g.Q) continue;
        acc += dcol[((c * g.R + r) * g.S + s) * ld + i * PQ + p * g.Q + wq / g.sw];
      }
    }
    dx[n0 * g.C * HW + e] = acc;
  }
}

// db[k] = sum over n and (p, q) of dy[n, k], one block per k, in double
template <class T>
__global__ void bias_grad_kernel(T* db, const T* dy, i64 N, i64 K, i64 PQ) {
  __shared__ double shared[kThreads];
  for (i64 k = blockIdx.x; k < K; k += gridDim.x) {
    double acc = 0.0;
    for (i64 e = threadIdx.x; e < N * PQ; e += blockDim.x) acc += static_cast<double>(dy[((e / PQ) * K + k) * PQ + e % PQ]);
    const double s = block_sum(acc, shared);
    if (threadIdx.x == 0) db[k] = static_cast<T>(s);
  }
}

ConvShape shape(i64 N, i64 C, i64 H, i64 W, i64 K, i64 R, i64 S, i64 sh, i64 sw, i64 ph, i64 pw) {
  return {N, C, H, W, K, R, S, sh, sw, ph, pw, (H + 2 * ph - R) / sh + 1, (W + 2 * pw - S) / sw + 1};
}

}  // namespace
}  // namespace cuda

using namespace cuda;  // the helpers of common.cuh and this file

template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, i64 N, i64 C, i64 H, i64 W, i64 K, i64 R, i64 S,
                    i64 sh, i64 sw, i64 ph, i64 pw) {
  // x is (N,C,H,W), w is (K,C,R,S), b is (K,), y is (N,K,P,Q)
  const ConvShape g = shape(N, C, H, W, K, R, S, sh, sw, ph, pw);
  const i64 nb = g.chunk(), PQ = g.pq();
  Buffer col(sizeof(T) * g.crs() * nb * PQ), out(sizeof(T) * K * nb * PQ);
  for (i64 n0 = 0; n0 < N; n0 += nb) {
    const i64 m = std::min(nb, N - n0), ld = m * PQ;
    launch<im2col_kernel<T>>(blocks_for(g.crs() * ld), kThreads, col.as<T>(), x, n0, m, g);
    gemm(out.as<T>(), w, col.as<T>(), false, false, K, ld, g.crs());
    launch<scatter_bias_kernel<T>>(blocks_for(m * K * PQ), kThreads, y, out.as<T>(), b, n0, m, K, PQ);
  }
}

template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, i64 N, i64 C, i64 H, i64 W, i64 K,
                     i64 R, i64 S, i64 sh, i64 sw, i64 ph, i64 pw) {
  // dy is (N,K,P,Q), x and dx are (N,C,H,W), w and dw are (K,C,R,S), db is (K,); dx may be nullptr
  const ConvShape g = shape(N, C, H, W, K, R, S, sh, sw, ph, pw);
  const i64 nb = g.chunk(), PQ = g.pq(), CRS = g.crs();
  const unsigned db_blocks = static_cast<unsigned>(std::min<i64>(K, limits().max_blocks));
  launch<bias_grad_kernel<T>>(db_blocks, kThreads, db, dy, N, K, PQ);
  Buffer col(sizeof(T) * CRS * nb * PQ), dyc(sizeof(T) * K * nb * PQ);  // col holds im2col(x), then dcol
  for (i64 n0 = 0; n0 < N; n0 += nb) {
    const i64 m = std::min(nb, N - n0), ld = m * PQ;
    launch<im2col_kernel<T>>(blocks_for(CRS * ld), kThreads, col.as<T>(), x, n0, m, g);
    launch<gather_dy_kernel<T>>(blocks_for(K * ld), kThreads, dyc.as<T>(), dy, n0, m, K, PQ);
    gemm_accumulate(dw, dyc.as<T>(), col.as<T>(), false, true, K, CRS, ld, /*accumulate=*/n0 > 0);
    if (!dx) continue;
    gemm(col.as<T>(), w, dyc.as<T>(), true, false, CRS, ld, K);
    launch<col2im_kernel<T>>(blocks_for(m * C * H * W), kThreads, dx, col.as<T>(), n0, m, g);
  }
}

DEEPNUM_INSTANTIATE(conv2d_forward);
DEEPNUM_INSTANTIATE(conv2d_backward);

}  // namespace deepnum
