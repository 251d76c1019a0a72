// Load-time self-check: does the runtime's TfLiteContext/Node/Registration/Tensor and builtin-params
// memory look like our declarations (tflite_abi.h)?
//
// Run at the start of every delegate Prepare (once per subgraph/signature), before any node is
// claimed. Every read of runtime memory goes through SafeReader, so a wrong layout is detected as
// implausible values instead of a crash. What is verified:
//   * TfLiteContext: the six function-pointer slots we use resolve (dladdr) into one loaded library;
//     tensors_size and recommended_num_threads are in range;
//   * execution plan: plausible size, distinct non-negative node indices, each fetchable;
//   * every node: readable input/output index arrays of plausible size with indices in range;
//     registration builtin_code/version plausible, invoke resolves into a loaded library,
//     custom ops carry a name;
//   * every tensor used by a node, at the assumed TfLiteTensor size: type, allocation type, bool
//     and quantization-type fields are valid enum values; dims are readable and non-negative; for
//     fixed-size types `bytes` equals the element count times the element size; constant tensors'
//     data is readable from first to last byte;
//   * every float32 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED node: its params struct holds valid
//     enum values and plausible strides/dilations, and the output shape those params imply equals the
//     output tensor's shape (this pins the params layouts, not just their sizes). The delegate runs
//     before the runtime propagates shapes, so dims marked unknown in dims_signature (-1) are
//     placeholders: a node whose relevant dims are placeholders stays "unverified" (and unclaimed);
//     a contradiction on known dims refuses the subgraph;
//   * dims_signature, when present, agrees with dims wherever it is not -1 (this reads the last
//     field of TfLiteTensor, pinning its size).
#ifndef ADASPRING_DELEGATES_ABI_CHECK_H_
#define ADASPRING_DELEGATES_ABI_CHECK_H_

#include <cstddef>
#include <set>
#include <string>

#include "delegates/tflite_abi.h"

namespace adaspring {

// What the check assumes about the runtime; only tests change it (to simulate a mismatch).
struct LayoutAssumptions {
  size_t tensor_size = sizeof(abi::Tensor);
  size_t params_offset = 0;  // where the builtin params start inside node->builtin_data
};

struct AbiCheckResult {
  bool ok = false;
  std::string reason;              // why the layout was judged incompatible (empty when ok)
  bool report_error_usable = false;  // context->ReportError passed its own check and may be called
  int nodes_checked = 0;
  int tensors_checked = 0;
  std::set<int> verified_nodes;  // float32 conv/depthwise/FC nodes whose params agree with their shapes
  int unverified_nodes = 0;      // ... whose shapes are run-time placeholders (not claimed)
  int candidates = 0;            // float32 conv/depthwise/FC nodes seen
};

AbiCheckResult CheckRuntimeAbi(abi::Context* context, const LayoutAssumptions& layout);

}  // namespace adaspring

#endif  // ADASPRING_DELEGATES_ABI_CHECK_H_
