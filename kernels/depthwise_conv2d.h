// float32 DEPTHWISE_CONV_2D (NHWC input, [1, KH, KW, C * M] filter) with fused epilogue, multi-threaded.
#ifndef ADASPRING_KERNELS_DEPTHWISE_CONV2D_H_
#define ADASPRING_KERNELS_DEPTHWISE_CONV2D_H_

#include "kernels/thread_pool.h"
#include "kernels/views.h"

namespace adaspring::kernels {

struct DepthwiseConv2DArgs {
  InputView input;              // input.channels * depth_multiplier == filter.out_channels
  DepthwiseFilterView filter;   // may be a slice of a larger filter
  int depth_multiplier = 1;     // output channel o reads input channel o / depth_multiplier
  ConvWindow window;
  Epilogue epilogue;
  OutputView output;  // output.channels == filter.out_channels
};

// Null when `args` is consistent, else a static message naming the first problem.
const char* CheckDepthwiseConv2DArgs(const DepthwiseConv2DArgs& args);

// Computes the depthwise convolution. `pool` may be null. `args` must pass CheckDepthwiseConv2DArgs.
void DepthwiseConv2D(const DepthwiseConv2DArgs& args, ThreadPool* pool);

}  // namespace adaspring::kernels

#endif  // ADASPRING_KERNELS_DEPTHWISE_CONV2D_H_
