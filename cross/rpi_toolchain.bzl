"""A C++ cross toolchain for 64-bit Raspberry Pi OS (aarch64-linux-gnu GCC on an x86-64 Linux host)."""

load("@bazel_tools//tools/build_defs/cc:action_names.bzl", "ACTION_NAMES")
load("@bazel_tools//tools/cpp:cc_toolchain_config_lib.bzl", "feature", "flag_group", "flag_set", "tool_path")

RPI_TARGET_CONSTRAINTS = [
    "@platforms//os:linux",
    "@platforms//cpu:aarch64",
]

# Where the cross compiler is installed (Debian: apt-get install g++-aarch64-linux-gnu) and the
# target's headers/libraries (a copy of the Pi's /usr and /lib, or Debian's arm64 multiarch files).
TOOL_PREFIX = "/usr/bin/aarch64-linux-gnu-"
SYSROOT = "/usr/aarch64-linux-gnu"
GCC_VERSION = "12"

_COMPILE_ACTIONS = [
    ACTION_NAMES.c_compile,
    ACTION_NAMES.cpp_compile,
    ACTION_NAMES.cpp_header_parsing,
    ACTION_NAMES.cpp_module_compile,
]

_LINK_ACTIONS = [
    ACTION_NAMES.cpp_link_executable,
    ACTION_NAMES.cpp_link_dynamic_library,
    ACTION_NAMES.cpp_link_nodeps_dynamic_library,
]

def _impl(ctx):
    tools = ["ar", "cpp", "gcc", "gcov", "ld", "nm", "objcopy", "objdump", "strip"]
    tool_paths = [tool_path(name = name, path = TOOL_PREFIX + name) for name in tools]
    defaults = feature(
        name = "rpi_defaults",
        enabled = True,
        flag_sets = [
            flag_set(
                actions = _COMPILE_ACTIONS,
                flag_groups = [flag_group(flags = [
                    "-mcpu=cortex-a72",  # Pi 4; runs on the Pi 3's A53 and the Pi 5's A76 too
                    "-fPIC",
                    "-no-canonical-prefixes",
                    "-fno-canonical-system-headers",
                ])],
            ),
            flag_set(
                actions = _LINK_ACTIONS,
                flag_groups = [flag_group(flags = ["-lstdc++", "-lm", "-pthread", "-ldl"])],
            ),
        ],
    )

    # Bazel 4.2.3 has no @rules_cc//cc/common: cc_common is the built-in global there.
    # buildifier: disable=native-cc-common
    return cc_common.create_cc_toolchain_config_info(
        ctx = ctx,
        features = [defaults],
        cxx_builtin_include_directories = [
            SYSROOT + "/include",
            "/usr/lib/gcc-cross/aarch64-linux-gnu/" + GCC_VERSION + "/include",
            "/usr/include/eigen3",  # header-only, architecture independent
        ],
        toolchain_identifier = "rpi-aarch64",
        host_system_name = "x86_64-unknown-linux-gnu",
        target_system_name = "aarch64-linux-gnu",
        target_cpu = "aarch64",
        target_libc = "glibc",
        compiler = "gcc",
        abi_version = "aarch64",
        abi_libc_version = "glibc",
        tool_paths = tool_paths,
    )

rpi_aarch64_toolchain_config = rule(
    implementation = _impl,
    attrs = {},
    provides = [CcToolchainConfigInfo],
)
