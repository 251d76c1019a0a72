"""Packaging for tflite-adaspring.

Base install = the on-device runtime only (numpy, ai-edge-litert, absl-py). Training and export need
the ``train`` extra; the dataset packages are the ``data`` extra.
"""

import os
import re
import sys
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "tflite_adaspring" / "_version.py").read_text()).group(1)


class BuildPyWithDelegate(build_py):
    """build_py that also compiles libadaspring_delegate.so (delegates/, kernels/) with g++ + Eigen.

    Regular installs put it next to tflite_adaspring/delegates/; editable installs into build/delegate,
    where the loader finds it. Without g++/Eigen the install goes on without the delegate, unless
    ADASPRING_REQUIRE_DELEGATE=1.
    """

    def run(self) -> None:
        super().run()
        sys.path.insert(0, str(HERE))
        from tflite_adaspring.delegates.build import DelegateBuildError, build_library, default_output_dir

        editable = getattr(self, "editable_mode", False)
        target = default_output_dir() if editable else Path(self.build_lib) / "tflite_adaspring" / "delegates"
        try:
            library = build_library(target, fingerprint_file=editable)
        except DelegateBuildError as error:
            if os.environ.get("ADASPRING_REQUIRE_DELEGATE") == "1":
                raise
            self.warn(f"the AdaSpring delegate was not built: {error}")
            return
        self.announce(f"built {library}", level=2)


class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform, not as pure Python."""

    def has_ext_modules(self) -> bool:
        return True


setup(
    cmdclass={"build_py": BuildPyWithDelegate},
    distclass=BinaryDistribution,
    name="tflite-adaspring",
    version=VERSION,
    description="AdaSpring on LiteRT: one .tflite that adapts its compression to the device's context at runtime.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tflite_adaspring", "tflite_adaspring.*"]),
    package_data={"tflite_adaspring": ["profiling/devices/*.json"]},
    install_requires=[
        "numpy>=1.26",
        "ai-edge-litert>=2.3,<2.4",
        "absl-py>=1.2,<2",
    ],
    extras_require={
        "train": [
            "tensorflow>=2.21,<2.22",
            "tf-keras>=2.21,<2.22",
            "tensorflow-model-optimization==0.8.1",
            "matplotlib>=3.7",
        ],
        # The loaders read the bundled files directly with numpy; `make` installs these with --no-deps
        # so that aeon's numba/llvmlite (~200 MB) are not pulled in.
        "data": ["seglearn==1.2.5", "aeon==1.6.0"],
        "dev": ["pytest>=8", "ruff>=0.6"],
    },
    entry_points={"console_scripts": ["adaspring=tflite_adaspring.cli.main:console_main"]},
)
