// deepnum CPU kernels: the one list of what cpp/*.cpp implement.
//
// Every kernel is a template over T = float or double (explicitly instantiated in its own
// file), takes raw C-contiguous pointers and its sizes, and trusts them: argument checks
// live in contract.h (except the ranges of labels and argmax, which the kernels check with ranges.h).
// The CUDA kernels (cuda/*.cu) define the same functions with the same signatures for device pointers:
// this is the one declaration list of both (each module builds its own, with hidden visibility).
// Argument order everywhere: outputs, then saved activations, then inputs, then sizes and scalars.
// Gradients are all written with `=` (never accumulated).
//
// Threading: OpenMP, parallel over what a thread writes, so no two threads write the same
// element and results are bit-identical for any thread count.
// SIMD: hot inner loops carry DEEPNUM_SIMD (function multi-versioning); the loader picks
// the AVX-512, AVX2 or baseline clone for the CPU at run time. Nothing is built for -march=native.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "constants.h"
#include "ranges.h"

// DEEPNUM_X86_LEVELS: the AVX-512, AVX2 and baseline versions are built (GCC on x86-64; clang 14 cannot multiversion
// function templates, and the sanitizer builds define DEEPNUM_NO_CLONES); elsewhere only the baseline of the target
// (on aarch64 that includes NEON, which -O3 vectorises for).
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(DEEPNUM_NO_CLONES)
#define DEEPNUM_X86_LEVELS 1
#define DEEPNUM_SIMD __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DEEPNUM_X86_LEVELS 0
#define DEEPNUM_SIMD
#endif

// Explicit instantiation of a kernel template for float and double, by name only: DEEPNUM_INSTANTIATE(gemm);
#define DEEPNUM_INSTANTIATE(fn) \
  template decltype(fn<float>) fn<float>; \
  template decltype(fn<double>) fn<double>

namespace deepnum {

using i64 = std::int64_t;

// A buffer of at least n elements owned by the calling thread and kept for its next call (no allocation,
// page faults or zero-filling per call; contents undefined). Slot tells apart the buffers one kernel uses at once,
// and the slots are one namespace for the whole library, since a kernel keeps its buffers across the calls it makes:
// conv2d.cpp and mlp.cpp use 0-9 (around their gemm calls), gemm 64 and up (gemm_internal.h's
// ScratchSlot), so that no callee reuses its caller's buffer.
template <class T, int Slot>
T* thread_scratch(i64 n) {
  static thread_local std::vector<T> buf;
  if (static_cast<i64>(buf.size()) < n) buf.resize(n);
  return buf.data();
}

// Activation codes: constants.h (Activation). Range checks of labels and argmax: ranges.h.

// gemm.cpp — c (M,N) = op(a) (M,K) · op(b) (K,N); a stored (K,M) if trans_a, b stored (N,K) if trans_b
template <class T> void gemm(T* c, const T* a, const T* b, bool trans_a, bool trans_b, i64 M, i64 N, i64 K);
// gemm.cpp — the same on strided operands (sub-blocks): c (M,N) contiguous, op(a)(i,k) = a[i·a_rs + k·a_cs],
// op(b)(k,j) = b[k·b_rs + j·b_cs]; one of the two strides of each operand must be 1
template <class T>
void gemm_strided(T* c, const T* a, i64 a_rs, i64 a_cs, const T* b, i64 b_rs, i64 b_cs, i64 M, i64 N, i64 K);
// linear.cpp — x (N,n_in), w (n_in,n_out), b (n_out), y (N,n_out); dx == nullptr: dx not computed
template <class T> void linear_forward(T* y, const T* x, const T* w, const T* b, i64 N, i64 n_in, i64 n_out);
template <class T>
void linear_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, i64 N, i64 n_in, i64 n_out);
// db (n) = column sums of dy (rows,n), rows in order, in double (bias gradients; rnn.cpp uses it too)
template <class T> void column_sums(T* db, const T* dy, i64 rows, i64 n);

// mlp.cpp — one fused SGD step of Dense layers + softmax-NLL: w_l (sizes[l-1], sizes[l]), b_l (sizes[l]) updated in
// place, x (N, sizes[0]), labels (N) in [0, sizes[layers]); returns the loss before the update.
template <class T>
double mlp_train_step(T* const* ws, T* const* bs, const int* acts, const i64* sizes, i64 layers, const T* x,
                      const i64* labels, i64 N, double lr, double weight_decay, double alpha);

// conv2d.cpp — x (N,C,H,W), w (K,C,R,S), b (K), y (N,K,P,Q), P = (H+2ph-R)/sh+1, Q = (W+2pw-S)/sw+1;
// dx == nullptr: dx not computed
template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, i64 N, i64 C, i64 H, i64 W, i64 K, i64 R, i64 S,
                    i64 sh, i64 sw, i64 ph, i64 pw);
template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, i64 N, i64 C, i64 H, i64 W, i64 K,
                     i64 R, i64 S, i64 sh, i64 sw, i64 ph, i64 pw);

// conv2d_winograd.cpp — conv2d's F(2×2, 5×5) path, which conv2d_forward/backward take where it applies (5×5
// kernels at stride 1 with enough channels and tiles to pay); the same layouts; db is not computed here
bool conv2d_winograd_applies(i64 N, i64 C, i64 H, i64 W, i64 K, i64 R, i64 S, i64 sh, i64 sw, i64 ph, i64 pw);
template <class T>
void conv2d_winograd_forward(T* y, const T* x, const T* w, const T* b, i64 N, i64 C, i64 H, i64 W, i64 K, i64 ph,
                             i64 pw);
template <class T>
void conv2d_winograd_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, i64 N, i64 C, i64 H, i64 W, i64 K,
                              i64 ph, i64 pw);

// pool.cpp — x (N,C,H,W), y and argmax (N,C,P,Q); argmax = h*W + w inside the (H,W) plane.
// First maximum in row-major window order wins; a NaN wins over any number.
template <class T>
void max_pool2d_forward(T* y, i64* argmax, const T* x, i64 N, i64 C, i64 H, i64 W, i64 size_h, i64 size_w,
                        i64 sh, i64 sw);
// Throws check_argmax's std::invalid_argument if an argmax lies outside [0, H*W) (nothing is written out of bounds).
template <class T>
void max_pool2d_backward(T* dx, const T* dy, const i64* argmax, i64 N, i64 C, i64 H, i64 W, i64 P, i64 Q);

// softmax_nll.cpp — logits, probs (N,n_classes), labels (N); returns the mean loss.
// Throws check_labels's std::invalid_argument (ranges.h) for a label outside [0, n_classes).
template <class T> double softmax_nll_forward(T* probs, const T* logits, const i64* labels, i64 N, i64 n_classes);
template <class T> void softmax_nll_backward(T* dlogits, const T* probs, const i64* labels, i64 N, i64 n_classes);

// activations.cpp — elementwise over n; the derivative is taken through the saved output y
template <class T> void activation_forward(T* y, const T* x, int act, double alpha, i64 n);
template <class T> void activation_backward(T* dx, const T* y, const T* dy, int act, double alpha, i64 n);

// dropout.cpp — inverted dropout; mask holds 0 or 1/(1-p); uniform draw i = splitmix64(seed + (i+1)·γ)
template <class T> void dropout_forward(T* y, T* mask, const T* x, double p, std::uint64_t seed, i64 n);
template <class T> void dropout_backward(T* dx, const T* dy, const T* mask, i64 n);

// updates.cpp — fused in-place parameter updates over n elements; velocity may be nullptr (no momentum buffer)
template <class T>
void sgd_update(T* param, T* velocity, const T* grad, double lr, double momentum, bool nesterov, double weight_decay,
                i64 n);
// the same plain SGD step (no momentum) on `rows` rows of `cols` values, ld_param / ld_grad apart, on the calling thread
template <class T>
void sgd_update_rows(T* param, i64 ld_param, const T* grad, i64 ld_grad, i64 rows, i64 cols, double lr,
                     double weight_decay);
template <class T>
void adam_update(T* param, T* m, T* v, const T* grad, double lr, double beta1, double beta2, double eps,
                 double weight_decay, i64 step, i64 n);

// rnn.cpp — Elman RNN over a sequence, time-major: x, dx (steps,N,D); h0, dh0 (N,H); h_all, dh_all (steps,N,H);
// w_xh (D,H); w_hh (H,H); b_h (H). act is kLinear, kSigmoid, kTanh or kRelu. bptt_steps: 0 (or >= steps) = full
// BPTT, k = the loss at each step reaches k steps back. clip: 0 = none, > 0 = the largest global 2-norm of
// (dw_xh, dw_hh, db_h).
template <class T>
void rnn_forward(T* h_all, const T* x, const T* h0, const T* w_xh, const T* w_hh, const T* b_h, i64 steps, i64 N,
                 i64 D, i64 H, int act);
template <class T>
void rnn_backward(T* dx, T* dh0, T* dw_xh, T* dw_hh, T* db_h, const T* h_all, const T* dh_all, const T* x,
                  const T* h0, const T* w_xh, const T* w_hh, i64 steps, i64 N, i64 D, i64 H, int act,
                  i64 bptt_steps, double clip);

// threads.cpp
void set_num_threads(int n);
int get_num_threads();
const char* simd_level();
int openmp_version();  // _OPENMP (yyyymm) of the build, 0 without OpenMP

}  // namespace deepnum
