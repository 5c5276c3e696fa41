"""The package as installed: light imports, console scripts, share/ files found through the ament index."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_core_imports_without_heavy_dependencies() -> None:
    code = (
        "import sys, eipl_trt, eipl_trt.predictor, eipl_trt.runners, eipl_trt.imaging, eipl_trt.spec, "
        "eipl_trt.cli, eipl_trt.ros, eipl_trt.bagio, eipl_trt.evaluate.metrics, eipl_trt.control, "
        "eipl_trt.common.stats, eipl_trt.camera, eipl_trt.bagio.dataset\n"
        "heavy = [m for m in ('torch', 'rclpy', 'onnxruntime', 'tensorrt', 'rosbags', 'mujoco', 'matplotlib',\n"
        "                     'cv2') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_cli_help_lists_every_subcommand() -> None:
    out = subprocess.run([sys.executable, "-m", "eipl_trt.cli", "--help"], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    for name in ("export", "quantize", "dataset", "train", "evaluate", "bench", "sim"):
        assert name in out


def test_installed_share_files_are_found() -> None:
    """After `pip install .` (make test does one) ament_index finds launch, config, engines and data."""
    ament = pytest.importorskip("ament_index_python.packages")
    prefix = os.environ.get("AMENT_PREFIX_PATH")
    if not prefix or not (Path(prefix.split(os.pathsep)[0]) / "share" / "eipl_trt").is_dir():
        pytest.skip("eipl_trt is not installed into AMENT_PREFIX_PATH (run through `make test`)")
    share = Path(ament.get_package_share_directory("eipl_trt"))
    for rel in ("package.xml", "launch/robot.launch.py", "config/eipl_trt.yaml",
                "config/diagnostic_analyzers.yaml", "config/eipl_trt.perspective",
                "data/pusher_sample/metadata.yaml", "data/pusher_sample/bag.mcap"):
        assert (share / rel).is_file(), rel
    scripts = Path(sys.executable).parent
    assert (scripts / "eipl_trt_node").is_file() and (scripts / "eipl-trt").is_file()


def test_bundled_models_resolve_by_name() -> None:
    from eipl_trt.paths import bundled_models, resolve_model

    bundled = bundled_models()
    if not bundled:
        pytest.skip("no bundled models in this checkout")
    for name, directory in bundled.items():
        spec = resolve_model(name)
        assert spec.directory == directory.resolve()
        spec.verify_variant("fp32")
