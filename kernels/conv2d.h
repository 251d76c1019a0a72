// float32 CONV_2D (NHWC input, OHWI filter) with fused epilogue, multi-threaded.
#ifndef ADASPRING_KERNELS_CONV2D_H_
#define ADASPRING_KERNELS_CONV2D_H_

#include "kernels/thread_pool.h"
#include "kernels/views.h"

namespace adaspring::kernels {

// How the convolution is lowered to GEMM.
enum class ConvMethod : int {
  kAuto = 0,    // kTiled, except for a few pixels over deep filters (>= 512 multiply-adds per output and
                // <= 16 output pixels), where Eigen's cache blocking wins: kIm2col / kPerTap as before
  kIm2col = 1,  // gather patches [pixels x KH*KW*Cin] and run one Eigen GEMM (an input-sliced filter's
                // used channels are compacted per call first)
  kPerTap = 2,  // one strided Eigen GEMM per filter tap accumulated into the output; never copies
  kTiled = 3,   // register-tiled kernel (TiledGemm): weights packed per call into channel panels with the
                // epilogue, input pixels read in place through row pointers (one per filter row or tap;
                // a zero-padded copy of the input only when a window reaches into the padding)
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
