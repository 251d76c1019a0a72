#include "delegates/partition_kernel.h"

#include <cstdlib>
#include <map>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "delegates/delegate.h"
#include "delegates/node_support.h"
#include "delegates/op_shapes.h"
#include "kernels/conv2d.h"
#include "kernels/depthwise_conv2d.h"
#include "kernels/fully_connected.h"

namespace adaspring {
namespace {

// One claimed node with the geometry resolved in Prepare.
struct Step {
  NodeSpec spec;
  Shape input_shape;
  Shape weights_shape;
  Shape output_shape;
  kernels::AxisGeometry rows;  // conv / depthwise
  kernels::AxisGeometry cols;
  int64_t fc_rows = 0;     // fully connected
  const WeightView* view = nullptr;  // shared-weight view replacing the weight tensor's data, or null
  int input_buffer = -1;   // index into PartitionKernel::buffers_, or -1 for a runtime tensor
  int output_buffer = -1;
};

class PartitionKernel {
 public:
  PartitionKernel(abi::Context* context, const abi::DelegateParams* params) {
    if (params == nullptr || params->delegate == nullptr || params->nodes_to_replace == nullptr ||
        params->output_tensors == nullptr) {
      init_error_ = "delegate kernel created without TfLiteDelegateParams";
      return;
    }
    owner_ = DelegateImpl::FromTfLite(params->delegate);
    const int* outputs = abi::IntArrayData(params->output_tensors);
    runtime_outputs_.insert(outputs, outputs + params->output_tensors->size);
    const int* nodes = abi::IntArrayData(params->nodes_to_replace);
    for (int i = 0; i < params->nodes_to_replace->size; ++i) {
      Step step;
      const char* why = nullptr;
      if (DescribeNode(context, nodes[i], &step.spec, &why) != NodeVerdict::kSupported) {
        init_error_ = "node " + std::to_string(nodes[i]) + " is no longer supported: " + (why ? why : "not ours");
        return;
      }
      step.view = owner_->ViewFor(context, step.spec);
      steps_.push_back(step);
    }
    owner_->counters().partitions.fetch_add(1, std::memory_order_relaxed);
  }

  abi::Status Prepare(abi::Context* context) {
    if (!init_error_.empty()) return Error(context, init_error_);
    buffers_.clear();
    buffer_shapes_.clear();
    std::map<int, int> buffer_of_tensor;
    for (Step& step : steps_) {
      const auto internal_input = buffer_of_tensor.find(step.spec.input);
      step.input_buffer = internal_input == buffer_of_tensor.end() ? -1 : internal_input->second;
      step.input_shape = step.input_buffer >= 0 ? buffer_shapes_[step.input_buffer]
                                                : TensorShape(context->tensors[step.spec.input]);
      step.weights_shape = TensorShape(context->tensors[step.spec.weights]);
      std::string problem;
      if (!ComputeOutputShape(&step, &problem)) {
        return Error(context, "node " + std::to_string(step.spec.node_index) + " (" + OpKindName(step.spec.kind) +
                                  "): " + problem);
      }
      if (runtime_outputs_.count(step.spec.output) != 0) {
        step.output_buffer = -1;
        if (ResizeOutput(context, step.spec.output, step.output_shape) != abi::kOk) {
          return Error(context, "could not resize output tensor " + std::to_string(step.spec.output));
        }
      } else {
        step.output_buffer = static_cast<int>(buffers_.size());
        buffers_.emplace_back(static_cast<size_t>(ElementCount(step.output_shape)));
        buffer_shapes_.resize(buffers_.size());
        buffer_shapes_.back() = step.output_shape;
        buffer_of_tensor[step.spec.output] = step.output_buffer;
      }
    }
    return abi::kOk;
  }

  abi::Status Invoke(abi::Context* context) {
    kernels::ThreadPool* pool = owner_->pool();
    for (const Step& step : steps_) {
      const float* input = step.input_buffer >= 0 ? buffers_[step.input_buffer].data()
                                                  : static_cast<const float*>(context->tensors[step.spec.input].data);
      float* output = step.output_buffer >= 0 ? buffers_[step.output_buffer].data()
                                              : static_cast<float*>(context->tensors[step.spec.output].data);
      const float* weights = static_cast<const float*>(context->tensors[step.spec.weights].data);
      kernels::Epilogue epilogue;
      epilogue.bias = step.spec.bias >= 0 ? static_cast<const float*>(context->tensors[step.spec.bias].data) : nullptr;
      epilogue.activation = step.spec.activation;
      if (step.view != nullptr && step.view->scale != nullptr) {
        // Folded batch norm: act(acc * scale + bias), the graph's bias being the folded shift.
        epilogue.scale = step.view->scale;
        epilogue.shift = epilogue.bias;
        epilogue.bias = nullptr;
      }
      const char* problem = Run(step, input, weights, epilogue, output, pool);
      if (problem != nullptr) {
        return Error(context, "node " + std::to_string(step.spec.node_index) + " (" + OpKindName(step.spec.kind) +
                                  "): " + problem);
      }
    }
    DelegateCounters& counters = owner_->counters();
    counters.partition_invokes.fetch_add(1, std::memory_order_relaxed);
    counters.node_invokes.fetch_add(static_cast<int64_t>(steps_.size()), std::memory_order_relaxed);
    return abi::kOk;
  }

 private:
  static abi::Status Error(abi::Context* context, const std::string& message) {
    context->ReportError(context, "adaspring delegate: %s", message.c_str());
    return abi::kError;
  }

  static bool ComputeOutputShape(Step* step, std::string* problem) {
    const Shape& in = step->input_shape;
    const Shape& w = step->weights_shape;
    switch (step->spec.kind) {
      case OpKind::kConv2D:
        if (in.size() != 4 || w.size() != 4 || in[3] != w[3]) {
          *problem = "input channels differ from the filter's";
          return false;
        }
        if (!ConvOutputShape(in, w[1], w[2], w[0], step->spec.conv, &step->output_shape, &step->rows, &step->cols)) {
          *problem = "the window does not fit the input";
          return false;
        }
        return true;
      case OpKind::kDepthwiseConv2D:
        if (in.size() != 4 || w.size() != 4 || in[3] <= 0 || w[3] % in[3] != 0) {
          *problem = "filter channels are not a multiple of the input channels";
          return false;
        }
        if (!ConvOutputShape(in, w[1], w[2], w[3], step->spec.conv, &step->output_shape, &step->rows, &step->cols)) {
          *problem = "the window does not fit the input";
          return false;
        }
        return true;
      case OpKind::kFullyConnected:
        if (w.size() != 2 || !FullyConnectedOutputShape(in, w[1], w[0], step->spec.keep_num_dims,
                                                         &step->output_shape, &step->fc_rows)) {
          *problem = "the input does not fit the weights";
          return false;
        }
        return true;
    }
    *problem = "unknown op";
    return false;
  }

  // Sets the runtime tensor's dims to `shape` (no-op when equal). The runtime takes ownership of the
  // new TfLiteIntArray and releases it with free(), so it is allocated with malloc().
  static abi::Status ResizeOutput(abi::Context* context, int tensor_index, const Shape& shape) {
    abi::Tensor* tensor = &context->tensors[tensor_index];
    if (TensorShape(*tensor) == shape) return abi::kOk;
    auto* dims = static_cast<abi::IntArray*>(std::malloc(abi::IntArrayBytes(static_cast<int>(shape.size()))));
    if (dims == nullptr) return abi::kError;
    dims->size = static_cast<int>(shape.size());
    for (size_t i = 0; i < shape.size(); ++i) abi::IntArrayData(dims)[i] = shape[i];
    return context->ResizeTensor(context, tensor, dims);
  }

  static const char* Run(const Step& step, const float* input, const float* weights, const kernels::Epilogue& epilogue,
                         float* output, kernels::ThreadPool* pool) {
    if (input == nullptr || output == nullptr || weights == nullptr) return "tensor data not allocated";
    const Shape& in = step.input_shape;
    const Shape& w = step.weights_shape;
    const Shape& out = step.output_shape;
    switch (step.spec.kind) {
      case OpKind::kConv2D: {
        kernels::Conv2DArgs args;
        args.input = {input, in[0], in[1], in[2], in[3], in[3]};
        args.filter = kernels::ConvFilterView::Dense(weights, w[0], w[1], w[2], w[3]);
        if (const WeightView* v = step.view) {
          args.filter = {v->weights, v->kernel_h, v->kernel_w, v->out_channels, v->in_channels, v->out_stride,
                         v->tap_stride};
        }
        args.window = {step.spec.conv.stride_h, step.spec.conv.stride_w,   step.spec.conv.dilation_h,
                       step.spec.conv.dilation_w, step.rows.pad_before, step.cols.pad_before};
        args.epilogue = epilogue;
        args.output = {output, out[0], out[1], out[2], out[3], out[3]};
        const char* problem = kernels::CheckConv2DArgs(args);
        if (problem == nullptr) kernels::Conv2D(args, pool);
        return problem;
      }
      case OpKind::kDepthwiseConv2D: {
        kernels::DepthwiseConv2DArgs args;
        args.input = {input, in[0], in[1], in[2], in[3], in[3]};
        args.filter = kernels::DepthwiseFilterView::Dense(weights, w[1], w[2], w[3]);
        if (const WeightView* v = step.view) {
          args.filter = {v->weights, v->kernel_h, v->kernel_w, v->out_channels, v->tap_stride};
        }
        args.depth_multiplier = w[3] / in[3];
        args.window = {step.spec.conv.stride_h, step.spec.conv.stride_w,   step.spec.conv.dilation_h,
                       step.spec.conv.dilation_w, step.rows.pad_before, step.cols.pad_before};
        args.epilogue = epilogue;
        args.output = {output, out[0], out[1], out[2], out[3], out[3]};
        const char* problem = kernels::CheckDepthwiseConv2DArgs(args);
        if (problem == nullptr) kernels::DepthwiseConv2D(args, pool);
        return problem;
      }
      case OpKind::kFullyConnected: {
        kernels::FullyConnectedArgs args;
        args.input = input;
        args.rows = static_cast<int>(step.fc_rows);
        args.input_row_stride = w[1];
        args.weights = kernels::MatrixView::Dense(weights, w[0], w[1]);
        if (const WeightView* v = step.view) {
          args.weights = {v->weights, v->out_channels, v->in_channels, v->out_stride};
        }
        args.epilogue = epilogue;
        args.output = output;
        args.output_row_stride = w[0];
        const char* problem = kernels::CheckFullyConnectedArgs(args);
        if (problem == nullptr) kernels::FullyConnected(args, pool);
        return problem;
      }
    }
    return "unknown op";
  }

  DelegateImpl* owner_ = nullptr;
  std::string init_error_;
  std::vector<Step> steps_;
  std::set<int> runtime_outputs_;
  std::vector<std::vector<float>> buffers_;  // tensors produced and consumed inside the partition
  std::vector<Shape> buffer_shapes_;
};

void* InitKernel(abi::Context* context, const char* buffer, size_t /*length*/) {
  try {
    return new PartitionKernel(context, reinterpret_cast<const abi::DelegateParams*>(buffer));
  } catch (...) {
    return nullptr;
  }
}

void FreeKernel(abi::Context* /*context*/, void* buffer) { delete static_cast<PartitionKernel*>(buffer); }

abi::Status PrepareKernel(abi::Context* context, abi::Node* node) {
  auto* kernel = static_cast<PartitionKernel*>(node->user_data);
  if (kernel == nullptr) {
    context->ReportError(context, "adaspring delegate: kernel initialisation failed (out of memory?)");
    return abi::kError;
  }
  try {
    return kernel->Prepare(context);
  } catch (...) {
    context->ReportError(context, "adaspring delegate: out of memory while preparing a partition");
    return abi::kError;
  }
}

abi::Status InvokeKernel(abi::Context* context, abi::Node* node) {
  auto* kernel = static_cast<PartitionKernel*>(node->user_data);
  if (kernel == nullptr) return abi::kError;
  try {
    return kernel->Invoke(context);
  } catch (...) {
    context->ReportError(context, "adaspring delegate: unexpected failure while invoking a partition");
    return abi::kError;
  }
}

}  // namespace

abi::Registration PartitionKernelRegistration() {
  abi::Registration registration{};
  registration.init = InitKernel;
  registration.free = FreeKernel;
  registration.prepare = PrepareKernel;
  registration.invoke = InvokeKernel;
  registration.builtin_code = abi::kBuiltinDelegate;
  registration.custom_name = "AdaSpringDelegate";
  registration.version = 1;
  return registration;
}

}  // namespace adaspring
