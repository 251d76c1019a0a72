"""The base package (data, context) never imports TensorFlow and installs without it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Not part of the source tree: environments, build output, caches, VCS data.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "bazel-*", "runs", ".stamps", "__pycache__", ".*_cache"
)

BASE_IMPORT_CHECK = (
    "import sys\n"
    "import tflite_adaspring, tflite_adaspring.data, tflite_adaspring.context\n"
    "{extra}"
    "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras'))\n"
    "assert not heavy, heavy\n"
    "print('BASE-OK')\n"
)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_loading_data_does_not_import_tensorflow() -> None:
    code = BASE_IMPORT_CHECK.format(
        extra="ds = tflite_adaspring.data.load('basic_motions')\nassert ds.train[0].shape[1:] == (100, 6)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "BASE-OK" in result.stdout


@pytest.mark.slow
def test_plain_install_works_without_tensorflow(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot create a virtual environment here: {exc}")
    python = env_dir / "bin" / "python"
    # pip builds a local folder in place (setuptools writes build/ and *.egg-info into it), so install a
    # copy of the checkout: the work tree stays untouched and no stale build/lib leaks into the wheel.
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    started = time.monotonic()
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(source)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env=_clean_env(),
    )
    install_seconds = time.monotonic() - started
    assert install.returncode == 0, install.stdout + install.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    check = BASE_IMPORT_CHECK.format(
        extra=(
            "import tflite_adaspring.cli.main, tflite_adaspring.cli.datasets_cmd\n"
            f"assert tflite_adaspring.__file__.startswith({str(env_dir)!r}), tflite_adaspring.__file__\n"
        )
    )
    base = subprocess.run(
        [str(python), "-c", check], capture_output=True, text=True, timeout=120, cwd=outside, env=_clean_env()
    )
    assert base.returncode == 0, base.stderr
    assert "BASE-OK" in base.stdout
    no_tf = subprocess.run(
        [str(python), "-c", "import tensorflow"], capture_output=True, text=True, timeout=120, cwd=outside
    )
    assert no_tf.returncode != 0 and "No module named 'tensorflow'" in no_tf.stderr
    # the CLI runs in the base install; seglearn/aeon are absent there, so their tasks name the install command
    cli = subprocess.run(
        [str(env_dir / "bin" / "adaspring"), "datasets", "--tasks=har_watch,basic_motions"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=outside,
        env=_clean_env(),
    )
    assert cli.returncode == 0, cli.stderr
    assert "pip install --no-deps seglearn==1.2.5" in cli.stdout
    assert "pip install --no-deps aeon==1.6.0" in cli.stdout
    print(f"venv + pip install took {install_seconds:.1f} s")
