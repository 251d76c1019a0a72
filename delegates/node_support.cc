#include "delegates/node_support.h"

namespace adaspring {
namespace {

bool IsConstantFloat(const abi::Tensor& tensor) {
  return tensor.type == abi::kFloat32 && tensor.allocation_type == abi::kMmapRo && tensor.data != nullptr;
}

bool IsActivationFloat(const abi::Tensor& tensor) {
  return tensor.type == abi::kFloat32 && tensor.allocation_type != abi::kDynamic &&
         tensor.allocation_type != abi::kNonCpu && tensor.dims != nullptr;
}

// Common input/output checks. Returns a reason or null.
const char* CheckOperands(abi::Context* context, const abi::Node& node, NodeSpec* spec) {
  const int num_inputs = node.inputs->size;
  if (num_inputs < 2 || num_inputs > 3) return "unexpected number of inputs";
  if (node.outputs->size != 1) return "more than one output";
  const int* inputs = abi::IntArrayData(node.inputs);
  spec->input = inputs[0];
  spec->weights = inputs[1];
  spec->bias = num_inputs == 3 ? inputs[2] : -1;
  spec->output = abi::IntArrayData(node.outputs)[0];
  if (spec->input < 0 || spec->weights < 0 || spec->output < 0) return "missing input/weights/output";
  const abi::Tensor& input = context->tensors[spec->input];
  const abi::Tensor& weights = context->tensors[spec->weights];
  const abi::Tensor& output = context->tensors[spec->output];
  if (!IsActivationFloat(input) || !IsActivationFloat(output)) return "input/output not static float32";
  if (spec->input == spec->output) return "input aliases output";
  if (!IsConstantFloat(weights) || weights.dims == nullptr) return "weights not a constant float32 tensor";
  if (spec->bias >= 0) {
    const abi::Tensor& bias = context->tensors[spec->bias];
    if (!IsConstantFloat(bias) || bias.dims == nullptr || bias.dims->size != 1) return "bias not constant float32";
  }
  return nullptr;
}

const char* DescribeConv(abi::Context* context, const abi::Node& node, NodeSpec* spec) {
  const auto* params = static_cast<const abi::ConvParams*>(node.builtin_data);
  if (params == nullptr) return "no params";
  if (!ToActivation(params->activation, &spec->activation)) return "unsupported fused activation";
  if (!ToPadding(params->padding, &spec->conv.padding)) return "unknown padding";
  spec->conv.stride_h = params->stride_height;
  spec->conv.stride_w = params->stride_width;
  spec->conv.dilation_h = params->dilation_height_factor;
  spec->conv.dilation_w = params->dilation_width_factor;
  const Shape input = TensorShape(context->tensors[spec->input]);
  const Shape filter = TensorShape(context->tensors[spec->weights]);
  if (input.size() != 4 || filter.size() != 4) return "input or filter not 4-D";
  if (input[3] != filter[3]) return "grouped convolution";
  if (spec->bias >= 0 && abi::IntArrayData(context->tensors[spec->bias].dims)[0] != filter[0]) {
    return "bias length differs from output channels";
  }
  Shape output;
  if (!ConvOutputShape(input, filter[1], filter[2], filter[0], spec->conv, &output)) return "window does not fit";
  return nullptr;
}

const char* DescribeDepthwise(abi::Context* context, const abi::Node& node, NodeSpec* spec) {
  const auto* params = static_cast<const abi::DepthwiseConvParams*>(node.builtin_data);
  if (params == nullptr) return "no params";
  if (!ToActivation(params->activation, &spec->activation)) return "unsupported fused activation";
  if (!ToPadding(params->padding, &spec->conv.padding)) return "unknown padding";
  spec->conv.stride_h = params->stride_height;
  spec->conv.stride_w = params->stride_width;
  spec->conv.dilation_h = params->dilation_height_factor;
  spec->conv.dilation_w = params->dilation_width_factor;
  const Shape input = TensorShape(context->tensors[spec->input]);
  const Shape filter = TensorShape(context->tensors[spec->weights]);
  if (input.size() != 4 || filter.size() != 4 || filter[0] != 1) return "input or filter not 4-D";
  if (input[3] <= 0 || filter[3] % input[3] != 0) return "filter channels not a multiple of input channels";
  if (spec->bias >= 0 && abi::IntArrayData(context->tensors[spec->bias].dims)[0] != filter[3]) {
    return "bias length differs from output channels";
  }
  Shape output;
  if (!ConvOutputShape(input, filter[1], filter[2], filter[3], spec->conv, &output)) return "window does not fit";
  return nullptr;
}

const char* DescribeFullyConnected(abi::Context* context, const abi::Node& node, NodeSpec* spec) {
  const auto* params = static_cast<const abi::FullyConnectedParams*>(node.builtin_data);
  if (params == nullptr) return "no params";
  if (!ToActivation(params->activation, &spec->activation)) return "unsupported fused activation";
  if (params->weights_format != 0) return "shuffled weights format";
  spec->keep_num_dims = params->keep_num_dims;
  const Shape input = TensorShape(context->tensors[spec->input]);
  const Shape weights = TensorShape(context->tensors[spec->weights]);
  if (weights.size() != 2) return "weights not 2-D";
  if (spec->bias >= 0 && abi::IntArrayData(context->tensors[spec->bias].dims)[0] != weights[0]) {
    return "bias length differs from output features";
  }
  Shape output;
  if (!FullyConnectedOutputShape(input, weights[1], weights[0], spec->keep_num_dims, &output)) {
    return "input does not fit the weights";
  }
  return nullptr;
}

}  // namespace

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kConv2D:
      return "CONV_2D";
    case OpKind::kDepthwiseConv2D:
      return "DEPTHWISE_CONV_2D";
    case OpKind::kFullyConnected:
      return "FULLY_CONNECTED";
  }
  return "?";
}

Shape TensorShape(const abi::Tensor& tensor) {
  if (tensor.dims == nullptr) return {};
  const int* data = abi::IntArrayData(tensor.dims);
  return Shape(data, data + tensor.dims->size);
}

NodeVerdict DescribeNode(abi::Context* context, int node_index, NodeSpec* spec, const char** why) {
  abi::Node* node = nullptr;
  abi::Registration* registration = nullptr;
  *why = nullptr;
  if (context->GetNodeAndRegistration(context, node_index, &node, &registration) != abi::kOk || node == nullptr ||
      registration == nullptr) {
    return NodeVerdict::kNotCandidate;
  }
  *spec = NodeSpec();
  spec->node_index = node_index;
  switch (registration->builtin_code) {
    case abi::kBuiltinConv2d:
      spec->kind = OpKind::kConv2D;
      break;
    case abi::kBuiltinDepthwiseConv2d:
      spec->kind = OpKind::kDepthwiseConv2D;
      break;
    case abi::kBuiltinFullyConnected:
      spec->kind = OpKind::kFullyConnected;
      break;
    default:
      return NodeVerdict::kNotCandidate;
  }
  const char* problem = CheckOperands(context, *node, spec);
  if (problem == nullptr) {
    if (spec->kind == OpKind::kConv2D) problem = DescribeConv(context, *node, spec);
    if (spec->kind == OpKind::kDepthwiseConv2D) problem = DescribeDepthwise(context, *node, spec);
    if (spec->kind == OpKind::kFullyConnected) problem = DescribeFullyConnected(context, *node, spec);
  }
  *why = problem;
  return problem == nullptr ? NodeVerdict::kSupported : NodeVerdict::kUnsupported;
}

}  // namespace adaspring
