// The emulated CUDA runtime (DEEPNUM_CUDA=EMULATE): the scheduler that runs every thread of every block of a launch
// on the CPU, the warp shuffles and __syncthreads, and the runtime API of cuda_runtime_api.h on host memory.
// What it promises is in device.h.
//
// Scheduling. A launch holds one mutex (launches from several Python threads run one after another, as on one
// stream). Blocks run in order; a block's threads are fibers (ucontext, stacks from a pool, a guard page below each)
// started in index order. A pass runs every runnable fiber until it blocks (at __syncthreads or a shuffle) or exits.
// After a pass: a warp whose lanes of the shuffle's mask all wait at the same shuffle is released (each lane reads
// its source lane's value from that shuffle's slots); otherwise, when every thread waits at __syncthreads, the block
// barrier is released; anything else (a thread exited while others wait at a barrier, lanes at different shuffles,
// a mask naming an exited lane) is an error, thrown after the block is abandoned.
// Sanitizers. AddressSanitizer is told of every stack switch (__sanitizer_start/finish_switch_fiber).
// ThreadSanitizer sees each CUDA thread as its own fiber: switching between the scheduler and a thread implies no
// ordering; a thread's start acquires what the host did before its block, __syncthreads releases and then
// acquires a sync object of the block (so accesses on either side of a barrier are ordered, and only those), and
// the threads' exits are acquired by the scheduler (so the next block and the host come after them: blocks are
// ordered one after another here, which hides races between blocks but not between the threads of a block). The scheduler's own
// bookkeeping (threadIdx, the fibers' states, the shuffle slots) is hidden from TSan by ignore annotations.
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "../common.cuh"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define DN_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
#define DN_TSAN 1
#endif

uint3 threadIdx;
uint3 blockIdx;
dim3 blockDim;
dim3 gridDim;

namespace deepnum {
namespace cuda {

Limits& emulated_limits() {
  static Limits limits;
  return limits;
}

}  // namespace cuda

namespace emulate {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kMaxThreads = 1024, kMaxBlockZ = 64, kMaxGridYZ = 65535, kMaxGridX = 0x7fffffffu;
#if defined(DN_ASAN) || defined(DN_TSAN)
constexpr std::size_t kStackBytes = std::size_t{1} << 20;  // sanitizers need room for their own frames
#else
constexpr std::size_t kStackBytes = std::size_t{128} << 10;
#endif

// The scheduler's bookkeeping, hidden from ThreadSanitizer (it is not the kernels' memory).
struct Untracked {
#ifdef DN_TSAN
  Untracked() {
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
  }
  ~Untracked() {
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
  }
#else
  Untracked() {}  // user-provided, so that a guard on its own is no unused variable
  ~Untracked() {}
#endif
};

enum class Wait { kRunnable, kBarrier, kShuffle, kDone };

struct Fiber {
  ucontext_t context;
  char* stack = nullptr;  // kStackBytes above a guard page, from the pool
  uint3 index{};
  Wait wait = Wait::kRunnable;
  unsigned shuffles = 0;  // shuffles this thread has entered
  unsigned barriers = 0;  // barriers this thread has entered (TSan: the parity picks the sync object)
  unsigned mask = 0;      // the mask of the shuffle it waits at
#ifdef DN_TSAN
  void* tsan = nullptr;
#endif
#ifdef DN_ASAN
  void* fake_stack = nullptr;
#endif
};

struct Block {
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  void (*body)(void*) = nullptr;
  void* context = nullptr;
  std::vector<std::uint64_t> slots;  // per warp: 2 x 32 values (shuffle parity), lane by lane
  std::string error;                 // set by a thread that broke a rule; the block is abandoned
  char barrier_sync[2] = {};         // TSan: the sync objects of even and odd __syncthreads
  char start_sync = 0;               // TSan: what the host did before this block
  char exit_sync = 0;                // TSan: the threads' exits, for the scheduler
#ifdef DN_TSAN
  void* scheduler_tsan = nullptr;
#endif
#ifdef DN_ASAN
  void* scheduler_fake_stack = nullptr;
  const void* scheduler_stack_bottom = nullptr;
  std::size_t scheduler_stack_size = 0;
#endif
};

std::mutex launch_mutex;
Block* running = nullptr;  // the block being run
Fiber* self = nullptr;     // the thread being run

std::vector<char*>& stack_pool() {
  static std::vector<char*> pool;  // grows to the largest block; kept for the process
  return pool;
}

char* stack_for(std::size_t i) {
  auto& pool = stack_pool();
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  while (pool.size() <= i) {
    void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    mprotect(p, page, PROT_NONE);  // a guard page below the stack: an overflow faults instead of writing on
    pool.push_back(static_cast<char*>(p) + page);
  }
  return pool[i];
}

// ---- switching (every switch goes through these two, with the sanitizers told) --------------

void switch_to_thread(Block& b, Fiber& f) {
  {
    Untracked u;
    self = &f;
    threadIdx = f.index;
  }
#ifdef DN_TSAN
  __tsan_switch_to_fiber(f.tsan, __tsan_switch_to_fiber_no_sync);
#endif
#ifdef DN_ASAN
  __sanitizer_start_switch_fiber(&b.scheduler_fake_stack, f.stack, kStackBytes);
#endif
  swapcontext(&b.scheduler, &f.context);
#ifdef DN_ASAN
  __sanitizer_finish_switch_fiber(b.scheduler_fake_stack, nullptr, nullptr);
#endif
}

// From the running thread back to the scheduler; returns when the thread is resumed (never, when it has exited).
void switch_to_scheduler(Fiber& f, bool exiting) {
  Block* running_block;
  {
    Untracked u;
    running_block = running;
  }
  Block& b = *running_block;
#ifdef DN_TSAN
  void* scheduler;
  {
    Untracked u;  // read before the release below: nothing of the block is touched after a thread's exit
    scheduler = b.scheduler_tsan;
  }
  if (exiting) __tsan_release(&b.exit_sync);  // the scheduler acquires it after the block: the exit is ordered
  __tsan_switch_to_fiber(scheduler, __tsan_switch_to_fiber_no_sync);
#endif
#ifdef DN_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &f.fake_stack, b.scheduler_stack_bottom, b.scheduler_stack_size);
#endif
  swapcontext(&f.context, &b.scheduler);
#ifdef DN_ASAN
  __sanitizer_finish_switch_fiber(f.fake_stack, &b.scheduler_stack_bottom, &b.scheduler_stack_size);
#endif
}

void thread_entry() {
  Fiber& f = *self;
  Block& b = *running;
#ifdef DN_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &b.scheduler_stack_bottom, &b.scheduler_stack_size);
#endif
#ifdef DN_TSAN
  __tsan_acquire(&b.start_sync);
#endif
  b.body(b.context);
  {
    Untracked u;
    f.wait = Wait::kDone;
  }
  switch_to_scheduler(f, /*exiting=*/true);
}

// A rule broken by the running thread: recorded, and the thread parks for good (the block is abandoned).
[[noreturn]] void fail_in_thread(const std::string& what) {
  Fiber& f = *self;
  {
    Untracked u;
    if (running->error.empty()) running->error = what;
    f.wait = Wait::kDone;
  }
  switch_to_scheduler(f, /*exiting=*/true);
  std::abort();  // not reached: an abandoned thread is never resumed
}

std::string thread_name(const uint3& t) {
  return "thread (" + std::to_string(t.x) + ", " + std::to_string(t.y) + ", " + std::to_string(t.z) + ")";
}

std::string kernel_name(const char* where) {
  const std::string s(where);  // "... [with auto Kernel = <name>; Args = ...]"
  const auto at = s.find("Kernel = ");
  if (at == std::string::npos) return s;
  const auto end = s.find_first_of(";]", at);
  return s.substr(at + 9, end - at - 9);
}

template <class D>  // dim3 or uint3
std::string dims(const D& d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
}

void check_limits(const char* where, const dim3& grid, const dim3& block) {
  std::string fault;
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (threads == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0)
    fault = "a grid or block dimension of 0";
  else if (threads > kMaxThreads || block.x > kMaxThreads || block.y > kMaxThreads || block.z > kMaxBlockZ)
    fault = "more threads per block than the hardware's 1024 (block.z <= 64)";
  else if (grid.x > kMaxGridX || grid.y > kMaxGridYZ || grid.z > kMaxGridYZ)
    fault = "a grid past the hardware's limits (x < 2^31, y and z <= 65535)";
  if (!fault.empty())
    throw std::runtime_error("CUDA emulation: launch of " + kernel_name(where) + " with grid " + dims(grid) +
                             " and block " + dims(block) + ": " + fault);
}

// After a pass in which no thread can run: release a warp at a shuffle or the block at its barrier.
// Returns false when every thread has exited; throws on a rule broken.
bool release(Block& b, const char* where) {
  Untracked u;
  const std::size_t n = b.fibers.size();
  std::size_t done = 0, at_barrier = 0;
  bool released = false;
  for (std::size_t w = 0; w * kWarp < n; ++w) {
    const std::size_t first = w * kWarp, last = std::min(n, first + kWarp);
    unsigned mask = 0;
    for (std::size_t i = first; i < last; ++i)
      if (b.fibers[i].wait == Wait::kShuffle) mask |= b.fibers[i].mask;
    if (mask == 0) continue;
    for (std::size_t i = first; i < last; ++i) {
      const Fiber& f = b.fibers[i];
      if (!(mask >> (i - first) & 1u)) continue;
      if (f.wait != Wait::kShuffle || f.shuffles != b.fibers[first + __builtin_ctz(mask)].shuffles)
        throw std::runtime_error("CUDA emulation: " + kernel_name(where) + ", block " + dims(blockIdx) + ": lane " +
                                 std::to_string(i - first) + " of warp " + std::to_string(w) +
                                 (f.wait == Wait::kDone ? " has exited" : " is not at the same shuffle") +
                                 " while lanes of its mask wait at a shuffle");
    }
    for (std::size_t i = first; i < last; ++i)
      if (b.fibers[i].wait == Wait::kShuffle) b.fibers[i].wait = Wait::kRunnable;
    released = true;
  }
  if (released) return true;
  for (const Fiber& f : b.fibers) {
    done += f.wait == Wait::kDone;
    at_barrier += f.wait == Wait::kBarrier;
  }
  if (done == n) return false;
  if (done > 0)
    throw std::runtime_error("CUDA emulation: " + kernel_name(where) + ", block " + dims(blockIdx) + ": " +
                             std::to_string(at_barrier) + " threads wait at __syncthreads but " +
                             std::to_string(done) + " have exited (every thread of a block must reach it)");
  for (Fiber& f : b.fibers) f.wait = Wait::kRunnable;
  return true;
}

void run_block(Block& b, const char* where) {
  {
    Untracked u;
    b.error.clear();
    const std::size_t n = b.fibers.size();
    for (std::size_t i = 0; i < n; ++i) {
      Fiber& f = b.fibers[i];
      f.wait = Wait::kRunnable;
      f.shuffles = 0;
      f.barriers = 0;
      f.stack = stack_for(i);
      f.index = uint3{static_cast<unsigned>(i % blockDim.x), static_cast<unsigned>(i / blockDim.x % blockDim.y),
                      static_cast<unsigned>(i / (1ull * blockDim.x * blockDim.y))};
      getcontext(&f.context);
      f.context.uc_stack.ss_sp = f.stack;
      f.context.uc_stack.ss_size = kStackBytes;
      f.context.uc_link = nullptr;
      makecontext(&f.context, thread_entry, 0);
#ifdef DN_TSAN
      f.tsan = __tsan_create_fiber(0);
#endif
    }
  }
#ifdef DN_TSAN
  __tsan_release(&b.start_sync);  // the host's work before this block (and the blocks before it)
#endif
  do {
    for (Fiber& f : b.fibers) {
      bool runnable;
      {
        Untracked u;
        runnable = f.wait == Wait::kRunnable;
      }
      if (runnable) switch_to_thread(b, f);
      bool failed;
      {
        Untracked u;
        failed = !b.error.empty();
      }
      if (failed) break;
    }
    std::string error;
    {
      Untracked u;
      error = b.error;
    }
    if (!error.empty())
      throw std::runtime_error("CUDA emulation: " + kernel_name(where) + ", block " + dims(blockIdx) + ": " + error);
  } while (release(b, where));
#ifdef DN_TSAN
  __tsan_acquire(&b.exit_sync);  // every thread's exit
  for (Fiber& f : b.fibers) __tsan_destroy_fiber(f.tsan);
#endif
}

}  // namespace

void run_grid(const char* where, dim3 grid, dim3 block, void (*body)(void*), void* context) {
  check_limits(where, grid, block);
  std::lock_guard<std::mutex> lock(launch_mutex);
  Block b;
  b.fibers.resize(1ull * block.x * block.y * block.z);
  b.slots.assign((b.fibers.size() + kWarp - 1) / kWarp * 2 * kWarp, 0);
  b.body = body;
  b.context = context;
#ifdef DN_TSAN
  b.scheduler_tsan = __tsan_get_current_fiber();
#endif
  struct Reset {  // whatever happens, no block is left marked as running
    ~Reset() {
      Untracked u;
      running = nullptr;
      self = nullptr;
    }
  } reset;
  {
    Untracked u;
    running = &b;
    gridDim = grid;
    blockDim = block;
  }
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        {
          Untracked u;
          blockIdx = uint3{x, y, z};
        }
        run_block(b, where);
      }
}

std::uint64_t shuffle(unsigned mask, std::uint64_t value, int mode, int arg, int width) {
  Fiber& f = *self;
  Block& b = *running;
  std::size_t i;
  unsigned parity;
  {
    Untracked u;
    i = static_cast<std::size_t>(&f - b.fibers.data());
    const unsigned lane = i % kWarp;
    if (width <= 0 || width > kWarp || (width & (width - 1)) != 0)
      fail_in_thread(thread_name(f.index) + ": shuffle width " + std::to_string(width) + " is not a power of 2 <= 32");
    if (!(mask >> lane & 1u)) fail_in_thread(thread_name(f.index) + ": a shuffle whose mask leaves out its own lane");
    const std::size_t lanes = std::min<std::size_t>(kWarp, b.fibers.size() - (i - lane));  // the warp's threads
    if (lanes < kWarp && (mask >> lanes) != 0)
      fail_in_thread(thread_name(f.index) + ": a shuffle mask naming lanes past the end of the block");
    parity = f.shuffles % 2;
    b.slots[((i / kWarp) * 2 + parity) * kWarp + lane] = value;
    f.shuffles += 1;
    f.mask = mask;
    f.wait = Wait::kShuffle;
  }
  switch_to_scheduler(f, /*exiting=*/false);
  Untracked u;
  const int lane = static_cast<int>(i % kWarp), base = lane / width * width, in_group = lane - base;
  int src = lane;
  if (mode == 0) src = base + ((arg % width) + width) % width;
  else if (mode == 1) src = in_group + arg < width ? lane + arg : lane;
  else src = (in_group ^ arg) < width ? base + (in_group ^ arg) : lane;
  if (!(mask >> src & 1u))
    fail_in_thread(thread_name(f.index) + ": a shuffle reads lane " + std::to_string(src) + ", which its mask leaves out");
  return b.slots[((i / kWarp) * 2 + parity) * kWarp + src];
}

}  // namespace emulate
}  // namespace deepnum

void __syncthreads() {
  using namespace deepnum::emulate;
  Fiber& f = *self;
  char* sync;
  {
    Untracked u;
    // two sync objects, alternating: a thread that runs on to the next barrier must not release into the one
    // that the slower threads of this barrier have still to acquire
    sync = &running->barrier_sync[f.barriers % 2];
    f.barriers += 1;
    f.wait = Wait::kBarrier;
  }
#ifdef DN_TSAN
  __tsan_release(sync);
#endif
  switch_to_scheduler(f, /*exiting=*/false);
#ifdef DN_TSAN
  __tsan_acquire(sync);
#else
  (void)sync;
#endif
}

// ---- the runtime API on host memory --------------------------------------------------------

namespace {

thread_local cudaError_t last_error = cudaSuccess;
std::mutex memory_mutex;

std::unordered_set<void*>& allocations() {
  static std::unordered_set<void*> live;
  return live;
}

cudaError_t fail(cudaError_t e) {
  last_error = e;
  return e;
}

}  // namespace

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::strcpy(prop->name, "CUDA emulated on the CPU (cuda/emulate)");
  prop->totalGlobalMem = static_cast<std::size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  prop->sharedMemPerBlock = 48 << 10;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7fffffff;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }  // every launch and copy has finished when it returns
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

namespace {
bool default_stream(cudaStream_t s) { return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread; }
struct EventTag {};  // what an emulated cudaEvent_t points to
}  // namespace

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr || (flags & ~0x0fu) != 0) return fail(cudaErrorInvalidValue);
  *event = reinterpret_cast<cudaEvent_t>(new EventTag);
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (event == nullptr || !default_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (event == nullptr) return fail(cudaErrorInvalidResourceHandle);
  delete reinterpret_cast<EventTag*>(event);
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  if (event == nullptr || !default_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  return flags == 0 ? cudaSuccess : fail(cudaErrorInvalidValue);
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return last_error; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
  }
  return "unknown error";
}

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  // 256-byte aligned, as cudaMalloc's; a plain heap block otherwise, so AddressSanitizer guards its ends
  void* p = std::aligned_alloc(256, (std::max<std::size_t>(bytes, 1) + 255) / 256 * 256);
  if (p == nullptr) return fail(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> lock(memory_mutex);
  allocations().insert(p);
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(memory_mutex);
    if (allocations().erase(ptr) == 0) return fail(cudaErrorInvalidDevicePointer);
  }
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void** ptr, std::size_t bytes, cudaStream_t) { return cudaMalloc(ptr, bytes); }
cudaError_t cudaFreeAsync(void* ptr, cudaStream_t) { return cudaFree(ptr); }

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  *pool = nullptr;
  return cudaSuccess;
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr attr, void* value) {
  return attr == cudaMemPoolAttrReleaseThreshold && value != nullptr ? cudaSuccess : fail(cudaErrorInvalidValue);
}

cudaError_t cudaMemPoolTrimTo(cudaMemPool_t, std::size_t) { return cudaSuccess; }

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return fail(cudaErrorInvalidValue);
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* dst, int value, std::size_t bytes) {
  if (bytes) std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t) {
  return cudaMemset(dst, value, bytes);
}
