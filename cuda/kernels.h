// deepnum CUDA kernels: the one list of what cuda/*.cu implement (host entry points).
//
// Mirrors cpp/kernels.h: same names, same argument order (outputs, then saved activations, then
// inputs, then sizes and scalars), same accumulation rule (every gradient written with `=`).
// All pointers are device pointers to C-contiguous data; sizes are trusted (checked in
// cuda/bindings.cpp). Everything runs on the default stream, in launch order. Every CUDA call is
// checked (check.h) and throws std::runtime_error; bad labels / argmax values found on the device
// throw std::invalid_argument (this needs one small device-to-host copy of a flag).
// Determinism: no atomics; every sum runs in an order fixed by the sizes (and the fixed launch
// configurations), so a rerun gives bit-identical results.
// This header is plain C++ (included by the host compiler for bindings.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace deepnum {
namespace cuda {

using i64 = std::int64_t;

// memory.cpp — device count and description; owning device buffer
int device_count(std::string* reason);  // 0 with the reason when cudaGetDeviceCount fails; never throws
class Buffer {
 public:
  explicit Buffer(std::size_t bytes);  // cudaMalloc (at least 1 byte, so a missing device is always reported)
  ~Buffer();                           // cudaFree; errors ignored (may run at interpreter exit)
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};
void copy_to_device(void* dst, const void* src, std::size_t bytes);
void copy_to_host(void* dst, const void* src, std::size_t bytes);
void copy_on_device(void* dst, const void* src, std::size_t bytes);
void fill_zero(void* dst, std::size_t bytes);

// gemm.cu — c (M,N) = op(a) (M,K) · op(b) (K,N); a stored (K,M) if trans_a, b stored (N,K) if trans_b.
// accumulate: c += instead of c = (used inside conv2d; the op itself overwrites).
template <class T>
void gemm(T* c, const T* a, const T* b, bool trans_a, bool trans_b, i64 M, i64 N, i64 K, bool accumulate = false);

// linear.cu — x (N,n_in), w (n_in,n_out), b (n_out), y (N,n_out)
template <class T> void linear_forward(T* y, const T* x, const T* w, const T* b, i64 N, i64 n_in, i64 n_out);
template <class T>
void linear_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, i64 N, i64 n_in, i64 n_out);
// db (n) = column sums of dy (rows,n) in double (bias gradients; rnn.cu uses it too)
template <class T> void column_sums(T* db, const T* dy, i64 rows, i64 n);

// conv2d.cu — x (N,C,H,W), w (K,C,R,S), b (K), y (N,K,P,Q), P = (H+2ph-R)/sh+1, Q = (W+2pw-S)/sw+1
template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, i64 N, i64 C, i64 H, i64 W, i64 K, i64 R, i64 S,
                    i64 sh, i64 sw, i64 ph, i64 pw);
template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, i64 N, i64 C, i64 H, i64 W, i64 K,
                     i64 R, i64 S, i64 sh, i64 sw, i64 ph, i64 pw);

// pool.cu — x (N,C,H,W), y and argmax (N,C,P,Q); argmax = h*W + w inside the (H,W) plane.
template <class T>
void max_pool2d_forward(T* y, i64* argmax, const T* x, i64 N, i64 C, i64 H, i64 W, i64 size_h, i64 size_w,
                        i64 sh, i64 sw);
// throws std::invalid_argument if an argmax lies outside [0, H*W) (nothing is written out of bounds)
template <class T>
void max_pool2d_backward(T* dx, const T* dy, const i64* argmax, i64 N, i64 C, i64 H, i64 W, i64 P, i64 Q);

// softmax_nll.cu — logits, probs (N,n_classes); labels (N); returns the mean loss (copies it to the host).
// Throws std::invalid_argument for a label outside [0, n_classes).
template <class T> double softmax_nll_forward(T* probs, const T* logits, const i64* labels, i64 N, i64 n_classes);
template <class T> void softmax_nll_backward(T* dlogits, const T* probs, const i64* labels, i64 N, i64 n_classes);

// activations.cu — elementwise over n
template <class T> void activation_forward(T* y, const T* x, int act, double alpha, i64 n);
template <class T> void activation_backward(T* dx, const T* y, const T* dy, int act, double alpha, i64 n);

// dropout.cu — same mask as cpp/dropout.cpp for the same seed
template <class T> void dropout_forward(T* y, T* mask, const T* x, double p, std::uint64_t seed, i64 n);
template <class T> void dropout_backward(T* dx, const T* dy, const T* mask, i64 n);

// updates.cu — fused in-place updates; velocity may be nullptr (no momentum buffer)
template <class T>
void sgd_update(T* param, T* velocity, const T* grad, double lr, double momentum, bool nesterov, double weight_decay,
                i64 n);
template <class T>
void adam_update(T* param, T* m, T* v, const T* grad, double lr, double beta1, double beta2, double eps,
                 double weight_decay, i64 step, i64 n);

// rnn.cu — as cpp/rnn.cpp: time-major, act in {linear, sigmoid, tanh, relu}, bptt_steps 0 = full, clip 0 = none
template <class T>
void rnn_forward(T* h_all, const T* x, const T* h0, const T* w_xh, const T* w_hh, const T* b_h, i64 steps, i64 N,
                 i64 D, i64 H, int act);
template <class T>
void rnn_backward(T* dx, T* dh0, T* dw_xh, T* dw_hh, T* db_h, const T* h_all, const T* dh_all, const T* x,
                  const T* h0, const T* w_xh, const T* w_hh, i64 steps, i64 N, i64 D, i64 H, int act,
                  i64 bptt_steps, double clip);

}  // namespace cuda
}  // namespace deepnum
