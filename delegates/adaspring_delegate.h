/* Public C interface of libadaspring_delegate.so (besides the standard external-delegate pair
 * tflite_plugin_create_delegate / tflite_plugin_destroy_delegate).
 *
 * Options (string key/value pairs, e.g. through ai_edge_litert.interpreter.load_delegate):
 *   num_threads   integer 1..64 (default 1): threads of the delegate's own kernels
 *   log_level     silent | info | debug (default silent): diagnostics on stderr
 *   weight_source path of a shared-weight file (format: weight_source.h), parsed at load
 *   weight_config the configuration of the weight source whose views this delegate computes
 *   debug_simulate_abi_mismatch  false | tensor | params: for tests, make the ABI self-check refuse
 * Unknown keys or invalid values make tflite_plugin_create_delegate return NULL after reporting the
 * reason through its report_error callback. */
#ifndef ADASPRING_DELEGATES_ADASPRING_DELEGATE_H_
#define ADASPRING_DELEGATES_ADASPRING_DELEGATE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Counters of one delegate instance. All fields are int64_t; new fields are only appended. */
typedef struct AdaSpringDelegateStats {
  int64_t struct_size;              /* sizeof(AdaSpringDelegateStats) of the library */
  int64_t num_threads;              /* threads used by the kernels */
  int64_t prepare_calls;            /* delegate Prepare calls: one per subgraph (signature) per application */
  int64_t abi_refusals;             /* Prepare calls in which the ABI self-check refused to claim anything */
  int64_t partitions;               /* delegate kernels created (one per connected group of claimed nodes) */
  int64_t claimed_conv2d;           /* CONV_2D nodes claimed */
  int64_t claimed_depthwise_conv2d; /* DEPTHWISE_CONV_2D nodes claimed */
  int64_t claimed_fully_connected;  /* FULLY_CONNECTED nodes claimed */
  int64_t skipped_candidates;       /* CONV_2D/DEPTHWISE_CONV_2D/FULLY_CONNECTED nodes left to the runtime */
  int64_t partition_invokes;        /* delegate kernel invocations */
  int64_t node_invokes;             /* claimed nodes computed */
  int64_t shared_views;             /* views of the selected weight_config (0 without a weight source) */
  int64_t claimed_shared;           /* claimed nodes that compute from a shared-weight view */
  int64_t shared_weight_bytes;      /* bytes of the weight source's data section (mapped read-only, not copied) */
  int64_t weight_source_mappings;   /* weight-source files mapped in this process (one per distinct file) */
} AdaSpringDelegateStats;

/* Copies the counters of `delegate` (a pointer returned by tflite_plugin_create_delegate) into `out`,
 * at most `out_size` bytes. Returns 0, or -1 when `delegate` is not a live delegate of this library. */
int adaspring_delegate_get_stats(const void* delegate, AdaSpringDelegateStats* out, size_t out_size);

/* Copies the last diagnostic (e.g. why the ABI self-check refused) into `buffer` (NUL-terminated,
 * truncated to `size`). Returns the full message length, or -1 for an unknown delegate. */
int adaspring_delegate_last_message(const void* delegate, char* buffer, size_t size);

/* Library version and the instruction set the kernels were compiled for, e.g. "0.1.0 x86-64-v3". */
const char* adaspring_delegate_build_info(void);

#ifdef __cplusplus
}
#endif

#endif /* ADASPRING_DELEGATES_ADASPRING_DELEGATE_H_ */
