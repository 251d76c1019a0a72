// The delegate kernel: one instance per partition (connected group of claimed nodes), running the
// partition's nodes in order on the kernels/ library.
#ifndef ADASPRING_DELEGATES_PARTITION_KERNEL_H_
#define ADASPRING_DELEGATES_PARTITION_KERNEL_H_

#include "delegates/tflite_abi.h"

namespace adaspring {

// The TfLiteRegistration passed to ReplaceNodeSubsetsWithDelegateKernels.
abi::Registration PartitionKernelRegistration();

}  // namespace adaspring

#endif  // ADASPRING_DELEGATES_PARTITION_KERNEL_H_
