// The CPU kernels (cpp/kernels.h) against the NumPy reference's values, without Python: for the builds that
// no Python here can load (the aarch64 cross-build, run under qemu-aarch64) and for the x86 SIMD levels that
// this CPU does not pick (qemu-x86_64 -cpu Nehalem or Haswell). make_cases.py writes the cases (its docstring
// gives the format); .ci/portable runs both.
//
//   deepnum_kernel_check CASES_FILE
//
// Each case runs with 1 and with 2 threads: every output and updated array must match the reference's to a
// relative error of 1e-4 (float32) or 1e-10 (float64) of its largest magnitude (int64 outputs exactly), the
// inputs must be left as they were, the outputs must be whole (each starts as NaN or -1), and the two thread
// counts must give the same bits. Prints a line per op and the SIMD level; exits 1 on any failure.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels.h"

namespace {

using deepnum::i64;
using Bytes = std::vector<unsigned char>;

struct Array {
  bool is_int = false, output = false;
  std::vector<i64> shape;
  Bytes before, want;  // want: the values after the reference's call
  i64 size() const {
    i64 n = 1;
    for (i64 d : shape) n *= d;
    return n;
  }
};

struct Arg {
  char tag = 0;               // 'a' array, 'l' list of arrays, 'i' integer, 'd' double
  std::vector<Array> arrays;  // one for 'a'
  i64 i = 0;
  double d = 0;
};

struct Case {
  std::string op;
  int element = 0;  // 4 or 8
  bool has_value = false;
  double value = 0;
  std::vector<Arg> args;
};

class Reader {
 public:
  explicit Reader(const char* path) : in_(path, std::ios::binary) {
    if (!in_) throw std::runtime_error(std::string("cannot open ") + path);
    char magic[6];
    read(magic, 6);
    if (std::memcmp(magic, "DNKC1\n", 6) != 0) throw std::runtime_error(std::string(path) + ": not a cases file");
  }
  bool next(Case& c) {
    std::uint32_t n;
    if (!in_.read(reinterpret_cast<char*>(&n), 4)) return false;
    c = Case{};
    c.op.resize(n);
    read(c.op.data(), n);
    c.element = get<std::uint8_t>();
    c.has_value = get<std::uint8_t>() != 0;
    if (c.has_value) c.value = get<double>();
    c.args.resize(get<std::uint32_t>());
    for (Arg& a : c.args) {
      read(&a.tag, 1);
      if (a.tag == 'a') {
        a.arrays.push_back(array(c.element));
      } else if (a.tag == 'l') {
        a.arrays.resize(get<std::uint32_t>());
        for (Array& x : a.arrays) x = array(c.element);
      } else if (a.tag == 'i') {
        a.i = get<i64>();
      } else if (a.tag == 'd') {
        a.d = get<double>();
      } else {
        throw std::runtime_error(c.op + ": unknown argument tag");
      }
    }
    return true;
  }

 private:
  void read(void* p, std::size_t n) {
    if (!in_.read(static_cast<char*>(p), static_cast<std::streamsize>(n))) throw std::runtime_error("truncated");
  }
  template <class V>
  V get() {
    V v;
    read(&v, sizeof v);
    return v;
  }
  Array array(int element) {
    Array a;
    char kind;
    read(&kind, 1);
    a.is_int = kind == 'i';
    a.shape.resize(get<std::uint32_t>());
    for (i64& d : a.shape) d = get<i64>();
    const int flags = get<std::uint8_t>();
    a.output = !(flags & 1);
    const std::size_t bytes = static_cast<std::size_t>(a.size()) * (a.is_int ? 8 : element);
    if (flags & 1) {
      a.before.resize(bytes);
      read(a.before.data(), bytes);
    }
    if (flags & 2) {
      a.want.resize(bytes);
      read(a.want.data(), bytes);
    } else {
      a.want = a.before;
    }
    return a;
  }
  std::ifstream in_;
};

// The working copies of a case's arrays (outputs filled with NaN, or -1), addressed as the kernel's arguments.
template <class T>
struct Work {
  const Case& c;
  std::vector<std::vector<Bytes>> data;  // [argument][array]

  explicit Work(const Case& c_) : c(c_), data(c_.args.size()) {
    for (std::size_t k = 0; k < c.args.size(); ++k)
      for (const Array& a : c.args[k].arrays) {
        Bytes b = a.before;
        if (a.output) {
          b.resize(a.want.size());
          if (a.is_int) {
            std::fill(reinterpret_cast<i64*>(b.data()), reinterpret_cast<i64*>(b.data()) + a.size(), i64{-1});
          } else {
            std::fill(reinterpret_cast<T*>(b.data()), reinterpret_cast<T*>(b.data()) + a.size(),
                      std::numeric_limits<T>::quiet_NaN());
          }
        }
        data[k].push_back(std::move(b));
      }
  }
  const Array& arr(std::size_t k, std::size_t j = 0) const { return c.args.at(k).arrays.at(j); }
  // the float array k (nullptr for an empty one: an output not asked for, or no momentum buffer)
  T* f(std::size_t k, std::size_t j = 0) {
    return arr(k, j).size() ? reinterpret_cast<T*>(data[k][j].data()) : nullptr;
  }
  i64* ix(std::size_t k) { return reinterpret_cast<i64*>(data[k][0].data()); }
  i64 dim(std::size_t k, std::size_t d) const { return arr(k).shape.at(d); }
  i64 n(std::size_t k) const { return arr(k).size(); }
  i64 I(std::size_t k) const { return c.args.at(k).i; }
  double D(std::size_t k) const { return c.args.at(k).tag == 'i' ? static_cast<double>(c.args[k].i) : c.args[k].d; }
};

// Calls the kernel of c.op on w's arrays; its value (or NaN where it has none).
template <class T>
double call(Work<T>& w) {
  namespace dn = deepnum;
  const std::string& op = w.c.op;
  const double none = std::numeric_limits<double>::quiet_NaN();
  if (op == "gemm") {
    const bool ta = w.I(3), tb = w.I(4);
    dn::gemm(w.f(0), w.f(1), w.f(2), ta, tb, w.dim(0, 0), w.dim(0, 1), ta ? w.dim(1, 0) : w.dim(1, 1));
  } else if (op == "linear_forward") {
    dn::linear_forward(w.f(0), w.f(1), w.f(2), w.f(3), w.dim(1, 0), w.dim(1, 1), w.dim(2, 1));
  } else if (op == "linear_backward") {
    dn::linear_backward(w.f(0), w.f(1), w.f(2), w.f(3), w.f(4), w.f(5), w.dim(4, 0), w.dim(4, 1), w.dim(5, 1));
  } else if (op == "conv2d_forward") {
    dn::conv2d_forward(w.f(0), w.f(1), w.f(2), w.f(3), w.dim(1, 0), w.dim(1, 1), w.dim(1, 2), w.dim(1, 3), w.dim(2, 0),
                       w.dim(2, 2), w.dim(2, 3), w.I(4), w.I(5), w.I(6), w.I(7));
  } else if (op == "conv2d_backward") {
    dn::conv2d_backward(w.f(0), w.f(1), w.f(2), w.f(3), w.f(4), w.f(5), w.dim(4, 0), w.dim(4, 1), w.dim(4, 2),
                        w.dim(4, 3), w.dim(5, 0), w.dim(5, 2), w.dim(5, 3), w.I(6), w.I(7), w.I(8), w.I(9));
  } else if (op == "max_pool2d_forward") {
    dn::max_pool2d_forward(w.f(0), w.ix(1), w.f(2), w.dim(2, 0), w.dim(2, 1), w.dim(2, 2), w.dim(2, 3), w.I(3), w.I(4),
                           w.I(5), w.I(6));
  } else if (op == "max_pool2d_backward") {
    dn::max_pool2d_backward(w.f(0), w.f(1), w.ix(2), w.dim(0, 0), w.dim(0, 1), w.dim(0, 2), w.dim(0, 3), w.dim(1, 2),
                            w.dim(1, 3));
  } else if (op == "softmax_nll_forward") {
    return dn::softmax_nll_forward(w.f(0), w.f(1), w.ix(2), w.dim(1, 0), w.dim(1, 1));
  } else if (op == "softmax_nll_backward") {
    dn::softmax_nll_backward(w.f(0), w.f(1), w.ix(2), w.dim(1, 0), w.dim(1, 1));
  } else if (op == "activation_forward") {
    dn::activation_forward(w.f(0), w.f(1), static_cast<int>(w.I(2)), w.D(3), w.n(1));
  } else if (op == "activation_backward") {
    dn::activation_backward(w.f(0), w.f(1), w.f(2), static_cast<int>(w.I(3)), w.D(4), w.n(1));
  } else if (op == "dropout_forward") {
    dn::dropout_forward(w.f(0), w.f(1), w.f(2), w.D(3), static_cast<std::uint64_t>(w.I(4)), w.n(2));
  } else if (op == "dropout_backward") {
    dn::dropout_backward(w.f(0), w.f(1), w.f(2), w.n(1));
  } else if (op == "sgd_update") {
    dn::sgd_update(w.f(0), w.f(1), w.f(2), w.D(3), w.D(4), w.I(5) != 0, w.D(6), w.n(0));
  } else if (op == "adam_update") {
    dn::adam_update(w.f(0), w.f(1), w.f(2), w.f(3), w.D(4), w.D(5), w.D(6), w.D(7), w.D(8), w.I(9), w.n(0));
  } else if (op == "rnn_forward") {
    dn::rnn_forward(w.f(0), w.f(1), w.f(2), w.f(3), w.f(4), w.f(5), w.dim(1, 0), w.dim(1, 1), w.dim(1, 2), w.dim(2, 1),
                    static_cast<int>(w.I(6)));
  } else if (op == "rnn_backward") {
    dn::rnn_backward(w.f(0), w.f(1), w.f(2), w.f(3), w.f(4), w.f(5), w.f(6), w.f(7), w.f(8), w.f(9), w.f(10),
                     w.dim(7, 0), w.dim(7, 1), w.dim(7, 2), w.dim(8, 1), static_cast<int>(w.I(11)), w.I(12), w.D(13));
  } else if (op == "mlp_train_step") {
    const std::size_t layers = w.c.args[0].arrays.size();
    std::vector<T*> ws, bs;
    std::vector<i64> sizes{w.arr(0, 0).shape[0]};
    for (std::size_t l = 0; l < layers; ++l) {
      ws.push_back(w.f(0, l));
      bs.push_back(w.f(1, l));
      sizes.push_back(w.arr(0, l).shape[1]);
    }
    const i64* codes = w.ix(2);
    const std::vector<int> acts(codes, codes + layers);
    return dn::mlp_train_step(ws.data(), bs.data(), acts.data(), sizes.data(), static_cast<i64>(layers), w.f(3), w.ix(4),
                              w.dim(3, 0), w.D(5), w.D(6), w.D(7));
  } else {
    throw std::runtime_error("no kernel named " + op);
  }
  return none;
}

// The largest error of got against want relative to want's largest magnitude (at least 1); inf where an element
// is NaN in one and not the other.
template <class T>
double relative_error(const T* got, const T* want, i64 n) {
  double err = 0, scale = 1;
  for (i64 i = 0; i < n; ++i) {
    if (std::isnan(got[i]) != std::isnan(want[i])) return INFINITY;
    if (!std::isnan(want[i])) {
      err = std::max(err, std::fabs(static_cast<double>(got[i]) - want[i]));
      scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
    }
  }
  return err / scale;
}

struct Summary {
  int cases = 0, failed = 0;
  double worst[2] = {0, 0};  // float32, float64
};

template <class T>
bool check(const Case& c, Summary& s, std::vector<std::string>& failures) {
  const double tol = sizeof(T) == 4 ? 1e-4 : 1e-10;
  const int slot = sizeof(T) == 4 ? 0 : 1;
  std::string shapes;
  for (const Arg& a : c.args)
    for (const Array& x : a.arrays) {
      shapes += "(";
      for (std::size_t d = 0; d < x.shape.size(); ++d) shapes += (d ? "," : "") + std::to_string(x.shape[d]);
      shapes += ")";
    }
  const std::string name = c.op + (sizeof(T) == 4 ? " float32 " : " float64 ") + shapes;
  std::vector<std::vector<Bytes>> first;
  double first_value = 0;
  bool ok = true;
  auto fail = [&](const std::string& why) {
    ok = false;
    failures.push_back(name + ": " + why);
  };
  for (int threads : {1, 2}) {
    deepnum::set_num_threads(threads);
    Work<T> w(c);
    double value;
    try {
      value = call(w);
    } catch (const std::exception& e) {
      fail(std::string("threw ") + e.what());
      return false;
    }
    if (c.has_value && !(std::fabs(value - c.value) <= tol * std::max(1.0, std::fabs(c.value))))
      fail("value " + std::to_string(value) + ", reference " + std::to_string(c.value));
    for (std::size_t k = 0; k < c.args.size(); ++k)
      for (std::size_t j = 0; j < c.args[k].arrays.size(); ++j) {
        const Array& a = c.args[k].arrays[j];
        const Bytes& got = w.data[k][j];
        const std::string which = "argument " + std::to_string(k) + (c.args[k].tag == 'l' ? "[" + std::to_string(j) + "]" : "");
        if (a.is_int) {
          if (got != a.want) fail(which + ": int64 values differ from the reference");
          continue;
        }
        const double err = relative_error(reinterpret_cast<const T*>(got.data()),
                                          reinterpret_cast<const T*>(a.want.data()), a.size());
        s.worst[slot] = std::max(s.worst[slot], err);
        if (!(err <= tol)) fail(which + ": relative error " + std::to_string(err));
      }
    if (threads == 1) {
      first = w.data;
      first_value = value;
    } else if (w.data != first || std::memcmp(&value, &first_value, sizeof value) != 0) {
      fail("1 and 2 threads give different bits");
    }
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CASES_FILE (written by tests/kernel_check/make_cases.py)\n", argv[0]);
    return 2;
  }
  std::map<std::string, Summary> ops;
  std::vector<std::string> failures;
  int total = 0;
  try {
    Reader reader(argv[1]);
    Case c;
    while (reader.next(c)) {
      Summary& s = ops[c.op];
      const bool ok = c.element == 4 ? check<float>(c, s, failures) : check<double>(c, s, failures);
      ++s.cases;
      s.failed += !ok;
      ++total;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel_check: %s\n", e.what());
    return 2;
  }
  for (const auto& [op, s] : ops)
    std::printf("%-22s %3d cases  %d failed  largest relative error: float32 %.1e, float64 %.1e\n", op.c_str(), s.cases,
                s.failed, s.worst[0], s.worst[1]);
  for (std::size_t i = 0; i < failures.size() && i < 30; ++i) std::printf("FAILED %s\n", failures[i].c_str());
  int failed = 0;
  for (const auto& [op, s] : ops) failed += s.failed;
  std::printf("kernel_check: %d cases, %d failed, SIMD level %s, OpenMP %d\n", total, failed, deepnum::simd_level(),
              deepnum::openmp_version());
  return failures.empty() ? 0 : 1;
}
