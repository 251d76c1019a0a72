#include "kernels/reference.h"

#include <algorithm>

namespace adaspring::kernels::reference {
namespace {

float Activate(float v, Act act) {
  if (act == Act::kRelu) return v > 0.0f ? v : 0.0f;
  if (act == Act::kRelu6) return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
  return v;
}

float Finish(double acc, int o, const std::vector<float>& bias, const std::vector<float>& scale,
             const std::vector<float>& shift, Act act) {
  double v = acc;
  if (!bias.empty()) v += bias[o];
  if (!scale.empty()) v *= scale[o];
  if (!shift.empty()) v += shift[o];
  return Activate(static_cast<float>(v), act);
}

}  // namespace

std::vector<float> Conv2D(const ConvShape& s, const std::vector<float>& input, const std::vector<float>& filter,
                          const std::vector<float>& bias, const std::vector<float>& scale,
                          const std::vector<float>& shift, Act act) {
  std::vector<float> out(static_cast<size_t>(s.batch) * s.out_h * s.out_w * s.out_c);
  for (int n = 0; n < s.batch; ++n)
    for (int y = 0; y < s.out_h; ++y)
      for (int x = 0; x < s.out_w; ++x)
        for (int o = 0; o < s.out_c; ++o) {
          double acc = 0.0;
          for (int ky = 0; ky < s.kernel_h; ++ky)
            for (int kx = 0; kx < s.kernel_w; ++kx) {
              const int iy = y * s.stride_h - s.pad_top + ky * s.dilation_h;
              const int ix = x * s.stride_w - s.pad_left + kx * s.dilation_w;
              if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
              for (int i = 0; i < s.in_c; ++i) {
                acc += static_cast<double>(input[((n * s.in_h + iy) * s.in_w + ix) * s.in_c + i]) *
                       filter[((o * s.kernel_h + ky) * s.kernel_w + kx) * s.in_c + i];
              }
            }
          out[((n * s.out_h + y) * s.out_w + x) * s.out_c + o] = Finish(acc, o, bias, scale, shift, act);
        }
  return out;
}

std::vector<float> DepthwiseConv2D(const ConvShape& s, int multiplier, const std::vector<float>& input,
                                   const std::vector<float>& filter, const std::vector<float>& bias, Act act) {
  std::vector<float> out(static_cast<size_t>(s.batch) * s.out_h * s.out_w * s.out_c);
  for (int n = 0; n < s.batch; ++n)
    for (int y = 0; y < s.out_h; ++y)
      for (int x = 0; x < s.out_w; ++x)
        for (int o = 0; o < s.out_c; ++o) {
          const int c = o / multiplier;
          double acc = 0.0;
          for (int ky = 0; ky < s.kernel_h; ++ky)
            for (int kx = 0; kx < s.kernel_w; ++kx) {
              const int iy = y * s.stride_h - s.pad_top + ky * s.dilation_h;
              const int ix = x * s.stride_w - s.pad_left + kx * s.dilation_w;
              if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
              acc += static_cast<double>(input[((n * s.in_h + iy) * s.in_w + ix) * s.in_c + c]) *
                     filter[(ky * s.kernel_w + kx) * s.out_c + o];
            }
          out[((n * s.out_h + y) * s.out_w + x) * s.out_c + o] = Finish(acc, o, bias, {}, {}, act);
        }
  return out;
}

std::vector<float> FullyConnected(int rows, int in, int out, const std::vector<float>& input,
                                  const std::vector<float>& weights, const std::vector<float>& bias, Act act) {
  std::vector<float> result(static_cast<size_t>(rows) * out);
  for (int r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o) {
      double acc = 0.0;
      for (int i = 0; i < in; ++i) acc += static_cast<double>(input[r * in + i]) * weights[o * in + i];
      result[r * out + o] = Finish(acc, o, bias, {}, {}, act);
    }
  return result;
}

}  // namespace adaspring::kernels::reference
