// float32 CONV_2D (NHWC input, OHWI filter) with fused epilogue, multi-threaded.
#ifndef ADASPRING_KERNELS_CONV2D_H_
#define ADASPRING_KERNELS_CONV2D_H_

#include "kernels/thread_pool.h"
#include "kernels/views.h"

namespace adaspring::kernels {

// How the convolution is lowered to GEMM.
enum class ConvMethod : int {
  kAuto = 0,    // im2col for few input channels, per-tap for input-sliced filters and long rows, else
                // im2col (1x1: no copy either way)
  kIm2col = 1,  // gather patches [pixels x KH*KW*Cin] and run one GEMM (an input-sliced filter's used
                // channels are compacted per call first)
  kPerTap = 2,  // one strided GEMM per filter tap accumulated into the output; never copies
};

struct Conv2DArgs {
  InputView input;        // input.channels == filter.in_channels
  ConvFilterView filter;  // may be a slice of a larger filter
  ConvWindow window;
  Epilogue epilogue;
  OutputView output;  // output.channels == filter.out_channels; height/width from the window geometry
  ConvMethod method = ConvMethod::kAuto;
};

// Null when `args` is consistent, else a static message naming the first problem.
const char* CheckConv2DArgs(const Conv2DArgs& args);

// Computes the convolution. `pool` may be null (single-threaded). `args` must pass CheckConv2DArgs.
void Conv2D(const Conv2DArgs& args, ThreadPool* pool);

}  // namespace adaspring::kernels

#endif  // ADASPRING_KERNELS_CONV2D_H_
