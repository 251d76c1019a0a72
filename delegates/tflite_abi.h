// Our own minimal declarations of the TFLite C ABI that an external delegate touches.
//
// No installable package ships the TFLite C headers, so the delegate declares only what it uses,
// laid out exactly as the runtime's structs (TensorFlow Lite / LiteRT "semi-ABI-stable" C structs,
// tensorflow/lite/core/c/common.h and builtin_op_data.h of the TF 2.21 / LiteRT 2.3 era, LP64).
// Fields we never read are kept as correctly sized padding so that the offsets of the fields we do
// read are right; the static_asserts at the bottom pin every offset we rely on. Structs we only read
// through runtime pointers are declared up to the last field we need. Structs we create or pass by
// value (Delegate, Registration) are declared completely.
//
// Before trusting these layouts on a given runtime, the delegate verifies them (abi_check.h).
#ifndef ADASPRING_DELEGATES_TFLITE_ABI_H_
#define ADASPRING_DELEGATES_TFLITE_ABI_H_

#include <cstddef>
#include <cstdint>

namespace adaspring::abi {

// TfLiteStatus (a C enum: int-sized).
enum Status : int {
  kOk = 0,
  kError = 1,
  kDelegateError = 2,
};

// TfLiteType values we test for.
enum TensorType : int {
  kNoType = 0,
  kFloat32 = 1,
  kInt32 = 2,
  kUInt8 = 3,
  kInt64 = 4,
  kString = 5,
  kBool = 6,
  kInt16 = 7,
  kComplex64 = 8,
  kInt8 = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kComplex128 = 12,
  kUInt64 = 13,
  kResource = 14,
  kVariant = 15,
  kUInt32 = 16,
  kUInt16 = 17,
  kInt4 = 18,
  kBFloat16 = 19,
  kInt2 = 20,
  kUInt4 = 21,
  kLastKnownType = kUInt4,
};

// TfLiteAllocationType.
enum AllocationType : int {
  kMemNone = 0,
  kMmapRo = 1,
  kArenaRw = 2,
  kArenaRwPersistent = 3,
  kDynamic = 4,
  kPersistentRo = 5,
  kCustom = 6,
  kVariantObject = 7,
  kNonCpu = 8,
  kLastKnownAllocation = kNonCpu,
};

// TfLiteBuiltinOperator codes we use (schema BuiltinOperator).
enum BuiltinCode : int32_t {
  kBuiltinConv2d = 3,
  kBuiltinDepthwiseConv2d = 4,
  kBuiltinFullyConnected = 9,
  kBuiltinCustom = 32,
  kBuiltinDelegate = 51,
};

// TfLitePadding.
enum PaddingType : int { kPaddingUnknown = 0, kPaddingSame = 1, kPaddingValid = 2 };

// TfLiteFusedActivation.
enum FusedActivation : int {
  kActNone = 0,
  kActRelu = 1,
  kActReluN1To1 = 2,
  kActRelu6 = 3,
  kActTanh = 4,
  kActSignBit = 5,
  kActSigmoid = 6,
  kLastKnownActivation = kActSigmoid,
};

// TfLiteIntArray: `int size` followed by `size` ints (a C flexible array member).
struct IntArray {
  int size;
};
inline const int* IntArrayData(const IntArray* array) { return reinterpret_cast<const int*>(array) + 1; }
inline int* IntArrayData(IntArray* array) { return reinterpret_cast<int*>(array) + 1; }
inline size_t IntArrayBytes(int size) { return sizeof(int) * (static_cast<size_t>(size) + 1); }

struct Context;
struct Delegate;
struct Node;
struct Registration;

// TfLiteTensor (non-TF_LITE_STATIC_MEMORY layout). The runtime's `context->tensors` is an array of
// these, so the size must be exact too.
struct Tensor {
  int32_t type;                      // TfLiteType
  void* data;                        // TfLitePtrUnion
  IntArray* dims;                    // TfLiteIntArray*
  float params_scale;                // TfLiteQuantizationParams.scale
  int32_t params_zero_point;         // TfLiteQuantizationParams.zero_point
  int32_t allocation_type;           // TfLiteAllocationType
  size_t bytes;                      //
  const void* allocation;            //
  const char* name;                  //
  Delegate* delegate;                //
  int32_t buffer_handle;             // TfLiteBufferHandle
  bool data_is_stale;                //
  bool is_variable;                  //
  int32_t quantization_type;         // TfLiteQuantization.type
  void* quantization_params;         // TfLiteQuantization.params
  void* sparsity;                    // TfLiteSparsity*
  const IntArray* dims_signature;    //
};

// TfLiteNode, up to the last field we read.
struct Node {
  IntArray* inputs;
  IntArray* outputs;
  IntArray* intermediates;
  IntArray* temporaries;
  void* user_data;
  void* builtin_data;
};

// TfLiteRegistration, complete: it is passed *by value* to ReplaceNodeSubsetsWithDelegateKernels,
// so the callee reads sizeof(its TfLiteRegistration) bytes of our copy. A runtime whose struct is
// shorter reads a prefix (fine); one whose struct were longer would read past it, which is why the
// declaration includes every field up to `inplace_operator`, the newest one in the 2.21 era.
struct Registration {
  void* (*init)(Context* context, const char* buffer, size_t length);
  void (*free)(Context* context, void* buffer);
  Status (*prepare)(Context* context, Node* node);
  Status (*invoke)(Context* context, Node* node);
  const char* (*profiling_string)(const Context* context, const Node* node);
  int32_t builtin_code;
  const char* custom_name;
  int version;
  void* registration_external;  // TfLiteOperator*; must stay null for a classic delegate kernel
  void* (*async_kernel)(Context* context, Node* node);
  uint64_t inplace_operator;  // TfLiteInPlaceOp bitmask; 0 = kTfLiteInplaceOpNone
};

// TfLiteContext, up to recommended_num_threads.
struct Context {
  size_t tensors_size;
  Status (*GetExecutionPlan)(Context* context, IntArray** execution_plan);
  Tensor* tensors;
  void* impl_;
  Status (*ResizeTensor)(Context* context, Tensor* tensor, IntArray* new_size);
  void (*ReportError)(Context* context, const char* format, ...);
  Status (*AddTensors)(Context* context, int tensors_to_add, int* first_new_tensor_index);
  Status (*GetNodeAndRegistration)(Context* context, int node_index, Node** node, Registration** registration);
  Status (*ReplaceNodeSubsetsWithDelegateKernels)(Context* context, Registration registration,
                                                  const IntArray* nodes_to_replace, Delegate* delegate);
  int recommended_num_threads;
};

// TfLiteDelegate, complete (we allocate it).
struct Delegate {
  void* data_;
  Status (*Prepare)(Context* context, Delegate* delegate);
  Status (*CopyFromBufferHandle)(Context* context, Delegate* delegate, int buffer_handle, Tensor* tensor);
  Status (*CopyToBufferHandle)(Context* context, Delegate* delegate, int buffer_handle, Tensor* tensor);
  void (*FreeBufferHandle)(Context* context, Delegate* delegate, int* handle);
  int64_t flags;  // TfLiteDelegateFlags; 0 = static shapes only
  void* opaque_delegate_builder;  // must be null: the runtime would call it instead of Prepare
};

// TfLiteDelegateParams: what a delegate kernel's init() receives as `buffer`.
struct DelegateParams {
  Delegate* delegate;
  IntArray* nodes_to_replace;
  IntArray* input_tensors;
  IntArray* output_tensors;
};

// TfLiteConvParams (versions 1-2; later versions only append).
struct ConvParams {
  int32_t padding;  // TfLitePadding
  int stride_width;
  int stride_height;
  int32_t activation;  // TfLiteFusedActivation
  int dilation_width_factor;
  int dilation_height_factor;
};

// TfLiteDepthwiseConvParams.
struct DepthwiseConvParams {
  int32_t padding;
  int stride_width;
  int stride_height;
  int depth_multiplier;
  int32_t activation;
  int dilation_width_factor;
  int dilation_height_factor;
};

// TfLiteFullyConnectedParams, up to keep_num_dims.
struct FullyConnectedParams {
  int32_t activation;
  int32_t weights_format;  // TfLiteFullyConnectedWeightsFormat; 0 = default (plain [out, in])
  bool keep_num_dims;
};

// The offsets every reader relies on (x86-64 / AArch64 LP64).
static_assert(sizeof(void*) == 8, "these declarations assume an LP64 platform");
static_assert(offsetof(Tensor, data) == 8 && offsetof(Tensor, dims) == 16, "TfLiteTensor layout");
static_assert(offsetof(Tensor, allocation_type) == 32 && offsetof(Tensor, bytes) == 40, "TfLiteTensor layout");
static_assert(offsetof(Tensor, name) == 56 && offsetof(Tensor, buffer_handle) == 72, "TfLiteTensor layout");
static_assert(offsetof(Tensor, data_is_stale) == 76 && offsetof(Tensor, quantization_type) == 80, "TfLiteTensor");
static_assert(offsetof(Tensor, dims_signature) == 104 && sizeof(Tensor) == 112, "TfLiteTensor layout");
static_assert(offsetof(Node, builtin_data) == 40, "TfLiteNode layout");
static_assert(offsetof(Registration, builtin_code) == 40 && offsetof(Registration, version) == 56, "registration");
static_assert(offsetof(Registration, inplace_operator) == 80 && sizeof(Registration) == 88, "TfLiteRegistration");
static_assert(offsetof(Context, tensors) == 16 && offsetof(Context, ReportError) == 40, "TfLiteContext layout");
static_assert(offsetof(Context, GetNodeAndRegistration) == 56, "TfLiteContext layout");
static_assert(offsetof(Context, ReplaceNodeSubsetsWithDelegateKernels) == 64, "TfLiteContext layout");
static_assert(offsetof(Context, recommended_num_threads) == 72, "TfLiteContext layout");
static_assert(offsetof(Delegate, flags) == 40 && sizeof(Delegate) == 56, "TfLiteDelegate layout");
static_assert(sizeof(ConvParams) == 24 && sizeof(DepthwiseConvParams) == 28, "conv params layout");
static_assert(offsetof(FullyConnectedParams, keep_num_dims) == 8, "fully connected params layout");

}  // namespace adaspring::abi

#endif  // ADASPRING_DELEGATES_TFLITE_ABI_H_
