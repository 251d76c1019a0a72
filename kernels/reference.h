// Naive reference loops on dense arrays, for the kernel tests only. Deliberately written without the
// views, strides or GEMM of the real kernels so that the two implementations share no code path.
#ifndef ADASPRING_KERNELS_REFERENCE_H_
#define ADASPRING_KERNELS_REFERENCE_H_

#include <vector>

namespace adaspring::kernels::reference {

enum class Act { kNone, kRelu, kRelu6 };

struct ConvShape {
  int batch, in_h, in_w, in_c;
  int out_c, kernel_h, kernel_w;
  int stride_h, stride_w, dilation_h, dilation_w;
  int pad_top, pad_left;
  int out_h, out_w;
};

// Dense NHWC input, OHWI filter, per-channel bias/scale/shift (empty = absent). Returns NHWC output.
std::vector<float> Conv2D(const ConvShape& s, const std::vector<float>& input, const std::vector<float>& filter,
                          const std::vector<float>& bias, const std::vector<float>& scale,
                          const std::vector<float>& shift, Act act);

// Dense NHWC input, [1, KH, KW, in_c * multiplier] filter; s.out_c must be in_c * multiplier.
std::vector<float> DepthwiseConv2D(const ConvShape& s, int multiplier, const std::vector<float>& input,
                                   const std::vector<float>& filter, const std::vector<float>& bias, Act act);

// input [rows, in], weights [out, in].
std::vector<float> FullyConnected(int rows, int in, int out, const std::vector<float>& input,
                                  const std::vector<float>& weights, const std::vector<float>& bias, Act act);

}  // namespace adaspring::kernels::reference

#endif  // ADASPRING_KERNELS_REFERENCE_H_
