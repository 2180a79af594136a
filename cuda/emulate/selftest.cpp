// Kernels that break (or keep) the rules the emulation enforces, for tests/test_emulation.py: they show that a
// missing __syncthreads, a barrier some threads skip, a shuffle with an exited lane and a launch past the hardware's
// limits are caught. Emulated build only (bound as deepnum._cuda._emulation_selftest).
#include <stdexcept>
#include <string>
#include <vector>

#include "../common.cuh"

namespace deepnum {
namespace emulate {
namespace {

constexpr int kN = 64;

// out[t] = the value thread t+1 stored: right only with the barrier between the store and the load (`base` differs
// from launch to launch, so what an earlier launch left in the shared array is wrong too)
template <bool kBarrier>
__global__ void rotate_kernel(int* out, int base) {
  __shared__ int s[kN];
  const int t = threadIdx.x;
  s[t] = base + t;
  if (kBarrier) __syncthreads();
  out[t] = s[(t + 1) % kN];
}

// thread 0 leaves before the barrier that the others wait at
__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

// out[lane] = the sum over the warp of (lane + 1), by a shuffle tree
__global__ void warp_sum_kernel(int* out) {
  int v = static_cast<int>(threadIdx.x % 32) + 1;
  for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  out[threadIdx.x] = __shfl_sync(0xffffffffu, v, 0);
}

// lane 31 exits; the others shuffle with a full mask
__global__ void shuffle_exited_lane_kernel(int* out) {
  if (threadIdx.x == 31) return;
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1, 1);
}

__global__ void noop_kernel(int*) {}

}  // namespace

std::vector<int> selftest(const std::string& name, int base) {
  std::vector<int> out(kN, -1);
  if (name == "rotate")
    cuda::launch<rotate_kernel<true>>(1, kN, out.data(), base);
  else if (name == "rotate_without_barrier")
    cuda::launch<rotate_kernel<false>>(1, kN, out.data(), base);
  else if (name == "divergent_barrier")
    cuda::launch<divergent_barrier_kernel>(1, kN, out.data());
  else if (name == "warp_sum")
    cuda::launch<warp_sum_kernel>(1, kN, out.data());
  else if (name == "shuffle_exited_lane")
    cuda::launch<shuffle_exited_lane_kernel>(1, 32, out.data());
  else if (name == "block_of_1025")
    cuda::launch<noop_kernel>(1, 1025, out.data());
  else if (name == "block_z_65")
    cuda::launch<noop_kernel>(1, dim3(1, 1, 65), out.data());
  else if (name == "grid_y_65536")
    cuda::launch<noop_kernel>(dim3(1, 65536), 1, out.data());
  else if (name == "grid_of_0")
    cuda::launch<noop_kernel>(0, 1, out.data());
  else
    throw std::invalid_argument("_emulation_selftest: no test named '" + name + "'");
  return out;
}

}  // namespace emulate
}  // namespace deepnum
