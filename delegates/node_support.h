// Which nodes the delegate claims, and what it needs to know about each of them.
//
// Claimed: float32 CONV_2D (not grouped), DEPTHWISE_CONV_2D and FULLY_CONNECTED (default weights
// format) whose weights and bias are constant (kTfLiteMmapRo) float32 tensors, with fused activation
// NONE, RELU or RELU6, static shapes and a single output. Everything else stays with the runtime.
// Assumes the ABI self-check passed (reads runtime structs directly).
#ifndef ADASPRING_DELEGATES_NODE_SUPPORT_H_
#define ADASPRING_DELEGATES_NODE_SUPPORT_H_

#include "delegates/op_shapes.h"
#include "delegates/tflite_abi.h"
#include "kernels/views.h"

namespace adaspring {

enum class OpKind : int { kConv2D = 0, kDepthwiseConv2D = 1, kFullyConnected = 2 };

struct NodeSpec {
  OpKind kind = OpKind::kConv2D;
  int node_index = -1;
  int input = -1;   // activation tensor
  int weights = -1;  // filter / weight tensor (constant)
  int bias = -1;     // constant bias tensor, or -1
  int output = -1;
  kernels::Activation activation = kernels::Activation::kNone;
  ConvAttributes conv;       // CONV_2D and DEPTHWISE_CONV_2D
  bool keep_num_dims = false;  // FULLY_CONNECTED
};

enum class NodeVerdict : int {
  kNotCandidate = 0,  // another op type: never ours
  kUnsupported = 1,   // CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED in a variant we leave to the runtime
  kSupported = 2,     // runs on our kernels; `spec` is filled
};

// Classifies one node. For kUnsupported, `why` points at a short static reason (for debug logs).
NodeVerdict DescribeNode(abi::Context* context, int node_index, NodeSpec* spec, const char** why);

const char* OpKindName(OpKind kind);

// Shape of a runtime tensor.
Shape TensorShape(const abi::Tensor& tensor);

}  // namespace adaspring

#endif  // ADASPRING_DELEGATES_NODE_SUPPORT_H_
