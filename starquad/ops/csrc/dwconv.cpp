// The weight gradient of a depthwise 2-D convolution on the CPU, for channels-last tensors (starquad issue #16).
//
// PyTorch's CPU weight gradient of a depthwise conv (groups == channels) is slow on the shapes our networks use:
// oneDNN took 12-14 ms per 64 channels at 8x56x56, k 7, against 1.4 ms for the forward (its input gradient is as
// fast as the forward, so that one stays PyTorch's). In a channels-last layout the channels of one pixel are
// contiguous, so every loop here runs over channels in SIMD vectors:
//
//   dW[c, ky, kx] = sum_{n, oy, ox} g[n, oy, ox, c] * x[n, oy*s + ky - p, ox*s + kx - p, c]
//
// float32 with k in {3, 5, 7, 9} takes the register-blocked kernel (weight_grad_vec); other types and kernels a
// plain loop whose innermost loop the compiler vectorises (weight_grad_loop). Work is split into cache-sized tiles
// of output rows, each thread summing into its own buffer (weight_grad).

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <type_traits>
#include <vector>

namespace {

struct Geometry {
  int64_t N, C, H, W, OH, OW, K, S, P;
};

Geometry geometry(const at::Tensor& x, const at::Tensor& g, int64_t K, int64_t S, int64_t P) {
  return {x.size(0), x.size(1), x.size(2), x.size(3), g.size(2), g.size(3), K, S, P};
}

// The plain loop (any type, any kernel): channels [c0, c0 + cb) over batch items [n0, n1) and output rows
// [oy0, oy1), added into acc[(ky * K + kx) * ldc + c].
template <typename T>
void weight_grad_loop(const T* x, const T* g, T* acc, int64_t ldc, const Geometry& d, int64_t c0, int64_t cb,
                      int64_t n0, int64_t n1, int64_t oy0, int64_t oy1) {
  const int64_t K = d.K;
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t oy = oy0; oy < oy1; ++oy) {
      for (int64_t ox = 0; ox < d.OW; ++ox) {
        const T* gp = g + ((n * d.OH + oy) * d.OW + ox) * d.C + c0;
        for (int64_t ky = 0; ky < K; ++ky) {
          const int64_t iy = oy * d.S + ky - d.P;
          if (iy < 0 || iy >= d.H) continue;
          for (int64_t kx = 0; kx < K; ++kx) {
            const int64_t ix = ox * d.S + kx - d.P;
            if (ix < 0 || ix >= d.W) continue;
            const T* xp = x + ((n * d.H + iy) * d.W + ix) * d.C + c0;
            T* a = acc + (ky * K + kx) * ldc;
#pragma omp simd
            for (int64_t c = 0; c < cb; ++c) a[c] += gp[c] * xp[c];
          }
        }
      }
    }
  }
}

// The float32 weight gradient, register-blocked: a task owns kVec channels (one SIMD vector) and keeps G x K
// accumulators (G kernel rows at a time) in registers while it streams over the output pixels; each gradient
// vector is loaded once and multiplied with G*K neighbouring input vectors. Output pixels whose taps all fall
// inside the input (the interior) take the unchecked loop; the border takes the checked one.
#if defined(__AVX512F__)
constexpr int kVec = 16, kRows = 3;  // 32 vector registers: 3 x 9 accumulators at most
#else
constexpr int kVec = 8, kRows = 1;   // 16 vector registers (AVX2)
#endif
typedef float vec_t __attribute__((vector_size(kVec * sizeof(float)), aligned(4)));

inline vec_t load(const float* p) { return *reinterpret_cast<const vec_t*>(p); }

template <int K>
void weight_grad_vec(const float* x, const float* g, float* dw, int64_t ldc, const Geometry& d, int64_t c0,
                     int64_t n0, int64_t n1, int64_t oy0, int64_t oy1) {
  // interior: ox * S - P >= 0 and ox * S + K - 1 - P < W
  const int64_t ox_lo = std::min<int64_t>(d.OW, (d.P + d.S - 1) / d.S);
  const int64_t ox_hi = std::max<int64_t>(ox_lo, std::min<int64_t>(d.OW, d.W + d.P - K >= 0 ? (d.W + d.P - K) / d.S + 1 : 0));
  for (int ky0 = 0; ky0 < K; ky0 += kRows) {
    const int rows = std::min(kRows, K - ky0);
    vec_t acc[kRows][K];
    for (int r = 0; r < kRows; ++r)
      for (int kx = 0; kx < K; ++kx) acc[r][kx] = vec_t{};
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t oy = oy0; oy < oy1; ++oy) {
        const float* grow = g + (n * d.OH + oy) * d.OW * d.C + c0;
        const float* xrow[kRows];
        bool valid[kRows];
        for (int r = 0; r < kRows; ++r) {
          const int64_t iy = oy * d.S + ky0 + r - d.P;
          valid[r] = r < rows && iy >= 0 && iy < d.H;
          xrow[r] = valid[r] ? x + (n * d.H + iy) * d.W * d.C + c0 : nullptr;
        }
        auto checked = [&](int64_t ox) {  // a border pixel: only the taps kx_lo <= kx < kx_hi fall inside
          const vec_t gv = load(grow + ox * d.C);
          const int64_t left = ox * d.S - d.P;  // input column of tap 0
          const int kx_lo = static_cast<int>(std::max<int64_t>(0, -left));
          const int kx_hi = static_cast<int>(std::min<int64_t>(K, d.W - left));
          for (int r = 0; r < kRows; ++r) {
            if (!valid[r]) continue;
            const float* xp = xrow[r] + left * d.C;
            for (int kx = kx_lo; kx < kx_hi; ++kx) acc[r][kx] += gv * load(xp + kx * d.C);
          }
        };
        for (int64_t ox = 0; ox < ox_lo; ++ox) checked(ox);
        for (int64_t ox = ox_lo; ox < ox_hi; ++ox) {
          const vec_t gv = load(grow + ox * d.C);
          const int64_t base = (ox * d.S - d.P) * d.C;
#pragma GCC unroll 3
          for (int r = 0; r < kRows; ++r) {
            if (!valid[r]) continue;
            const float* xp = xrow[r] + base;
#pragma GCC unroll 9
            for (int kx = 0; kx < K; ++kx) acc[r][kx] += gv * load(xp + kx * d.C);
          }
        }
        for (int64_t ox = ox_hi; ox < d.OW; ++ox) checked(ox);
      }
    }
    for (int r = 0; r < rows; ++r)
      for (int kx = 0; kx < K; ++kx)
        for (int c = 0; c < kVec; ++c) dw[((ky0 + r) * K + kx) * ldc + c] += acc[r][kx][c];
  }
}

using VecKernel = void (*)(const float*, const float*, float*, int64_t, const Geometry&, int64_t, int64_t, int64_t,
                           int64_t, int64_t);

VecKernel vec_kernel(int64_t K) {
  switch (K) {
    case 3: return weight_grad_vec<3>;
    case 5: return weight_grad_vec<5>;
    case 7: return weight_grad_vec<7>;
    case 9: return weight_grad_vec<9>;
    default: return nullptr;
  }
}

// One gradient's dW. The work is split into tiles of a few output rows of one batch item (or of a few whole images
// when the maps are small), small enough that the tile's input and gradient rows stay in the core's L2 cache while
// every channel vector (and every block of kernel rows) passes over them; so x and g are read from memory about
// once, not once per channel vector and row block.
// Each thread adds its tiles into its own [ky][kx][c] buffer; the buffers are summed at the end. Float32 with K in
// {3, 5, 7, 9} takes the register-blocked kernel for whole SIMD vectors of channels; the rest (other types and
// kernels, the channels after the last whole vector) the plain loop.
constexpr int64_t kTileBytes = 256 * 1024;

template <typename T>
at::Tensor weight_grad(const at::Tensor& x, const at::Tensor& grad, const Geometry& d) {
  const int64_t K = d.K, KKC = d.K * d.K * d.C;
  const VecKernel fast = std::is_same<T, float>::value ? vec_kernel(K) : nullptr;
  const int64_t row_bytes = (d.S * d.W + d.OW) * d.C * static_cast<int64_t>(sizeof(T));  // per output row
  const int64_t rows = std::max<int64_t>(1, std::min<int64_t>(d.OH, kTileBytes / std::max<int64_t>(1, row_bytes)));
  const int64_t tiles = (d.OH + rows - 1) / rows;
  const int64_t threads = at::get_num_threads();
  // small maps: a tile holds several whole images (fewer flushes of the registers), still two tiles per thread
  const int64_t fit = rows == d.OH ? std::max<int64_t>(1, kTileBytes / std::max<int64_t>(1, d.OH * row_bytes)) : 1;
  const int64_t imgs = std::max<int64_t>(1, std::min(fit, d.N / (2 * threads)));
  const int64_t blocks = (d.N + imgs - 1) / imgs;
  std::vector<T> partial(static_cast<size_t>(threads * KKC), T(0));  // [thread][ky][kx][c]
  const T* xp = x.data_ptr<T>();
  const T* gp = grad.data_ptr<T>();
  at::parallel_for(0, blocks * tiles, 1, [&](int64_t begin, int64_t end) {
    T* acc = partial.data() + std::min<int64_t>(at::get_thread_num(), threads - 1) * KKC;
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t n0 = (unit / tiles) * imgs, n1 = std::min(d.N, n0 + imgs);
      const int64_t oy0 = (unit % tiles) * rows, oy1 = std::min(d.OH, oy0 + rows);
      int64_t c0 = 0;
      if (fast) {
        for (; c0 + kVec <= d.C; c0 += kVec)
          fast(reinterpret_cast<const float*>(xp), reinterpret_cast<const float*>(gp),
               reinterpret_cast<float*>(acc + c0), d.C, d, c0, n0, n1, oy0, oy1);
      }
      if (c0 < d.C) weight_grad_loop<T>(xp, gp, acc + c0, d.C, d, c0, d.C - c0, n0, n1, oy0, oy1);
    }
  });
  at::Tensor w = at::zeros({K, K, d.C}, x.options());  // [ky][kx][c], transposed to (C, 1, K, K) below
  T* wp = w.data_ptr<T>();
  for (int64_t t = 0; t < threads; ++t) {
    const T* src = partial.data() + t * KKC;
    for (int64_t i = 0; i < KKC; ++i) wp[i] += src[i];
  }
  return w.permute({2, 0, 1}).unsqueeze(1).contiguous();
}

void check(const at::Tensor& x, const std::vector<at::Tensor>& grads) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 4, "dwconv: x must be a 4-D CPU tensor");
  TORCH_CHECK(!grads.empty(), "dwconv: at least one gradient");
  TORCH_CHECK(x.is_contiguous(at::MemoryFormat::ChannelsLast), "dwconv: x must be channels-last");
  for (const auto& g : grads) {
    TORCH_CHECK(g.dim() == 4 && g.size(0) == x.size(0) && g.size(1) == x.size(1) && g.scalar_type() == x.scalar_type(),
                "dwconv: every gradient must be (N, C, OH, OW) like x");
    TORCH_CHECK(g.is_contiguous(at::MemoryFormat::ChannelsLast), "dwconv: gradients must be channels-last");
  }
}

}  // namespace

// The weight gradient of each of grads (all of the same depthwise conv's output shape, all reading x).
std::vector<at::Tensor> dw_weight_grads(const at::Tensor& x, const std::vector<at::Tensor>& grads, int64_t K,
                                        int64_t stride, int64_t padding) {
  check(x, grads);
  const Geometry d = geometry(x, grads[0], K, stride, padding);
  std::vector<at::Tensor> out;
  for (const auto& g : grads)
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dw_weight_grads", [&] { out.push_back(weight_grad<scalar_t>(x, g, d)); });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("weight_grads", &dw_weight_grads, "depthwise conv weight gradients of several outputs sharing one input",
        py::arg("x"), py::arg("grads"), py::arg("K"), py::arg("stride"), py::arg("padding"));
}
