/* gemm: c (M,N) = op(a) (M,K) · op(b) (K,N), all row-major and C-contiguous on the device; op(a) = aᵀ when
 * trans_a (a stored (K,M)), op(b) = bᵀ when trans_b (b stored (N,K)). c is overwritten (or, inside the
 * library, accumulated into with cuda::gemm_accumulate).
 *
 * One tiled shared-memory kernel, templated on the transposes and the dtype: a block of 256 threads computes a
 * 64 x 64 tile of c, marching over K in slices of 16. Each slice of op(a) (64 x 16) and op(b) (16 x 64) is
 * loaded into shared memory with the contiguous dimension of the stored matrix across consecutive threads
 * (coalesced for every transpose), zero-padded at the edges; each thread then accumulates a 4 x 4 register
 * block of c at rows ty + 16·i and columns tx + 16·j (strided, so the stores of a warp are contiguous and the
 * shared-memory reads conflict-free). The shared tiles are stored k-major (As[k][i], Bs[k][j]), each row padded
 * by 8 bytes (66 floats, 65 doubles): a load that runs along k (a not transposed, b transposed) has a warp store
 * 16 consecutive k of each of two columns, one row apart. With rows of 64 (a multiple of the 32 banks) the 16
 * fall in one bank, a 16-way conflict (32-way for double); with rows 2 banks longer the 32 floats of a warp, and
 * the 16 doubles of each half-warp, fall in 32 distinct banks: one pass per store (two for double, the minimum).
 * Each c element is one sum over k in order, so results are deterministic.
 * Tile rows beyond gridDim.y · 64 are covered by a loop over blockIdx.y (grid.y is capped at 65535).
 *
 * Split K (weight gradients: dw = xᵀ·dy of linear and rnn with K = the batch, conv2d's dw with K = nb·P·Q): when
 * c has few tiles and K is long, one tile per block would leave most of the GPU idle (a conv dw is one block).
 * Then K is cut into S chunks of kc (a multiple of 16), blockIdx.z = chunk: each chunk's product goes to its
 * own (M,N) slice of a scratch buffer, and a second kernel adds the slices in order, chunk 0 + chunk 1 + ... (and
 * c first, when accumulating): a sum order fixed by the shape, so results are bit-identical run to run (they
 * differ from the unsplit sum in the last bits). S depends on the shape only, never on the device:
 *   S = min(kSplitBlocks / tiles, K / kSplitMinK), split when S >= 2,
 * i.e. up to kSplitBlocks = 256 blocks in all (about two per SM of an H100/H200's 132) and chunks of at least
 * kSplitMinK = 256 (16 slices), so a split needs tiles <= 128 and K >= 512; kc = 16·ceil(ceil(K / S) / 16), which
 * may leave fewer than S chunks. The scratch holds chunks·M·N <= 256·64·64 elements (4 MiB of float), from the
 * stream-ordered pool (memory.cpp), so it costs no synchronisation.
 */
#include "common.cuh"

namespace deepnum {
namespace cuda {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16, kTM = 4, kTN = 4;
constexpr int kGemmThreads = (kBM / kTM) * (kBN / kTN);  // 256
static_assert(kBM * kBK % kGemmThreads == 0 && kBK * kBN % kGemmThreads == 0, "tile loads must divide evenly");

template <class T>
constexpr int kPad = 8 / sizeof(T);  // shared tile rows 8 bytes longer: no bank conflicts in k-major stores (top)
constexpr i64 kSplitBlocks = 256, kSplitMinK = 256;

// The tile (blockIdx.x, blockIdx.y + gridDim.y·t) of c + blockIdx.z·M·N, summing over k in
// [blockIdx.z·kc, min(K, (blockIdx.z + 1)·kc)): all of K when gridDim.z is 1, one chunk of split K otherwise.
template <class T, bool TA, bool TB>
__global__ void __launch_bounds__(kGemmThreads)
    gemm_kernel(T* __restrict__ c, const T* __restrict__ a, const T* __restrict__ b, i64 M, i64 N, i64 K, i64 kc,
                bool accumulate) {
  __shared__ T As[kBK][kBM + kPad<T>];  // As[k][i] = op(a)(row0 + i, k0 + k)
  __shared__ T Bs[kBK][kBN + kPad<T>];  // Bs[k][j] = op(b)(k0 + k, col0 + j)
  const int tid = threadIdx.x, tx = tid % (kBN / kTN), ty = tid / (kBN / kTN);
  const i64 col0 = static_cast<i64>(blockIdx.x) * kBN;
  const i64 k_begin = static_cast<i64>(blockIdx.z) * kc, k_end = k_begin + kc < K ? k_begin + kc : K;
  c += static_cast<i64>(blockIdx.z) * M * N;
  const i64 m_tiles = (M + kBM - 1) / kBM;
  for (i64 bm = blockIdx.y; bm < m_tiles; bm += gridDim.y) {
    const i64 row0 = bm * kBM;
    T acc[kTM][kTN];
#pragma unroll
    for (int i = 0; i < kTM; ++i)
#pragma unroll
      for (int j = 0; j < kTN; ++j) acc[i][j] = T(0);

    for (i64 k0 = k_begin; k0 < k_end; k0 += kBK) {
#pragma unroll
      for (int l = tid; l < kBM * kBK; l += kGemmThreads) {
        // stored a is (M,K) row-major (contiguous in k) or, with TA, (K,M) (contiguous in i)
        const int li = TA ? l % kBM : l / kBK, lk = TA ? l / kBM : l % kBK;
        const i64 i = row0 + li, k = k0 + lk;
        T v = T(0);
        if (i < M && k < k_end) v = TA ? a[k * M + i] : a[i * K + k];
        As[lk][li] = v;
      }
#pragma unroll
      for (int l = tid; l < kBK * kBN; l += kGemmThreads) {
        // stored b is (K,N) row-major (contiguous in j) or, with TB, (N,K) (contiguous in k)
        const int lj = TB ? l / kBK : l % kBN, lk = TB ? l % kBK : l / kBN;
        const i64 j = col0 + lj, k = k0 + lk;
        T v = T(0);
        if (j < N && k < k_end) v = TB ? b[j * K + k] : b[k * N + j];
        Bs[lk][lj] = v;
      }
      __syncthreads();
#pragma unroll
      for (int k = 0; k < kBK; ++k) {
        T ar[kTM], br[kTN];
#pragma unroll
        for (int i = 0; i < kTM; ++i) ar[i] = As[k][ty + i * (kBM / kTM)];
#pragma unroll
        for (int j = 0; j < kTN; ++j) br[j] = Bs[k][tx + j * (kBN / kTN)];
#pragma unroll
        for (int i = 0; i < kTM; ++i)
#pragma unroll
          for (int j = 0; j < kTN; ++j) acc[i][j] += ar[i] * br[j];
      }
      __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < kTM; ++i) {
      const i64 r = row0 + ty + i * (kBM / kTM);
      if (r >= M) continue;
#pragma unroll
      for (int j = 0; j < kTN; ++j) {
        const i64 q = col0 + tx + j * (kBN / kTN);
        if (q < N) c[r * N + q] = accumulate ? c[r * N + q] + acc[i][j] : acc[i][j];
      }
    }
  }
}

// c = (accumulate ? c : 0) + partial[0] + partial[1] + ... + partial[S-1], each (M,N) slice added in order
template <class T>
__global__ void split_sum_kernel(T* c, const T* partial, i64 MN, i64 S, bool accumulate) {
  for (i64 e = grid_start(); e < MN; e += grid_stride()) {
    T s = partial[e];
    for (i64 z = 1; z < S; ++z) s += partial[z * MN + e];
    c[e] = accumulate ? c[e] + s : s;
  }
}

template <class T, bool TA, bool TB>
void gemm_tiles(T* c, const T* a, const T* b, i64 M, i64 N, i64 K, bool accumulate) {
  const i64 n_tiles = (N + kBN - 1) / kBN, m_tiles = (M + kBM - 1) / kBM;
  if (n_tiles > 0x7fffffff) throw std::invalid_argument("gemm: N is too large for the CUDA grid");
  const unsigned grid_y = static_cast<unsigned>(std::min<i64>(m_tiles, limits().max_blocks));
  const i64 tiles = m_tiles * n_tiles;  // <= M·N, which fits an i64 (c exists)
  const i64 S = std::min(kSplitBlocks / tiles, K / kSplitMinK);  // the chunks of split K (see the top)
  if (S < 2) {
    launch<gemm_kernel<T, TA, TB>>(dim3(static_cast<unsigned>(n_tiles), grid_y), kGemmThreads, c, a, b, M, N, K, K,
                                   accumulate);
    return;
  }
  const i64 kc = ((K + S - 1) / S + kBK - 1) / kBK * kBK, chunks = (K + kc - 1) / kc;  // chunks <= S, each non-empty
  Buffer partial(sizeof(T) * chunks * M * N);
  launch<gemm_kernel<T, TA, TB>>(dim3(static_cast<unsigned>(n_tiles), grid_y, static_cast<unsigned>(chunks)),
                                 kGemmThreads, partial.as<T>(), a, b, M, N, K, kc, false);
  launch<split_sum_kernel<T>>(blocks_for(M * N), kThreads, c, partial.as<T>(), M * N, chunks, accumulate);
}

}  // namespace

template <class T>
void gemm_accumulate(T* c, const T* a, const T* b, bool trans_a, bool trans_b, i64 M, i64 N, i64 K, bool accumulate) {
  // c is (M,N); a is (M,K), or (K,M) if trans_a; b is (K,N), or (N,K) if trans_b
  if (M <= 0 || N <= 0) return;
  if (trans_a)
    trans_b ? gemm_tiles<T, true, true>(c, a, b, M, N, K, accumulate)
            : gemm_tiles<T, true, false>(c, a, b, M, N, K, accumulate);
  else
    trans_b ? gemm_tiles<T, false, true>(c, a, b, M, N, K, accumulate)
            : gemm_tiles<T, false, false>(c, a, b, M, N, K, accumulate);
}

DEEPNUM_INSTANTIATE(gemm_accumulate);

}  // namespace cuda

template <class T>
void gemm(T* c, const T* a, const T* b, bool trans_a, bool trans_b, i64 M, i64 N, i64 K) {
  cuda::gemm_accumulate(c, a, b, trans_a, trans_b, M, N, K, false);
}

DEEPNUM_INSTANTIATE(gemm);

}  // namespace deepnum
