"""Compiler flags shared by //kernels and //delegates."""

# -march of the kernels on x86-64: AVX2 + FMA (CPUs since ~2015). The delegate's entry points are built
# for the baseline and refuse cleanly on older CPUs (delegates/plugin_api.cc).
KERNEL_ISA = "x86-64-v3"

COMMON_COPTS = [
    "-std=c++17",
    "-fPIC",
    "-fvisibility=hidden",
    "-fvisibility-inlines-hidden",
    "-isystem",
    "/usr/include/eigen3",
]

# The kernels and the delegate logic: optimised, for KERNEL_ISA on x86-64.
KERNEL_COPTS = COMMON_COPTS + [
    "-O3",
    "-DNDEBUG",
] + select({
    "//kernels:x86_64": ["-march=" + KERNEL_ISA],
    "//conditions:default": [],
})

# The exported entry points: baseline instruction set, told which ISA to check for at load time.
ENTRY_COPTS = COMMON_COPTS + ["-O2"] + select({
    "//kernels:x86_64": [
        "-DADASPRING_REQUIRE_X86_64_V3",
        "-DADASPRING_KERNEL_ISA=\\\"" + KERNEL_ISA + "\\\"",
    ],
    "//conditions:default": [],
})
