/* dropout: inverted dropout with a counter-based random stream.
 *   forward:  element i draws u_i = splitmix64(seed + (i+1)·0x9E3779B97F4A7C15) >> 11, times 2^-53
 *             (uint64 arithmetic wraps); mask_i = u_i >= p ? 1/(1-p) : 0; y = x·mask.
 *   backward: dx = dy·mask.
 * The draw depends only on (seed, i), so masks are bit-identical to _reference.dropout_uniform
 * for any thread count. Layout: any shape, n elements, C-contiguous.
 */
#include <cstdint>

#include "kernels.h"
#include "parallel.h"

namespace deepnum {
namespace {

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;

template <class T>
DEEPNUM_SIMD void forward_range(T* y, T* mask, const T* x, double p, std::uint64_t seed, T scale, i64 lo, i64 hi) {
  for (i64 i = lo; i < hi; ++i) {
    std::uint64_t z = seed + static_cast<std::uint64_t>(i + 1) * kGolden;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = static_cast<double>(static_cast<std::int64_t>(z >> 11)) * 0x1p-53;  // exact: 53 bits
    const T m = u >= p ? scale : T(0);
    const T xi = x[i];  // read before y is written: y may alias x
    mask[i] = m;
    y[i] = xi * m;
  }
}

template <class T>
DEEPNUM_SIMD void backward_range(T* dx, const T* dy, const T* mask, i64 lo, i64 hi) {
  for (i64 i = lo; i < hi; ++i) dx[i] = dy[i] * mask[i];
}

}  // namespace

template <class T>
void dropout_forward(T* y, T* mask, const T* x, double p, std::uint64_t seed, i64 n) {
  // x, y and mask are (n,) in any shape
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  parallel_ranges(n, n, [&](i64 lo, i64 hi) { forward_range(y, mask, x, p, seed, scale, lo, hi); });
}

template <class T>
void dropout_backward(T* dx, const T* dy, const T* mask, i64 n) {
  // dy, mask and dx are (n,) in any shape
  parallel_ranges(n, n, [&](i64 lo, i64 hi) { backward_range(dx, dy, mask, lo, hi); });
}

DEEPNUM_INSTANTIATE(dropout_forward);
DEEPNUM_INSTANTIATE(dropout_backward);

}  // namespace deepnum
