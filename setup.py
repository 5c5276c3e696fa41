"""ament_python package definition for eipl_trt.

Works both under ``colcon build`` (ROS 2 workspace) and with a plain ``pip install .``: launch,
config and engine files go to ``share/eipl_trt`` via data_files, where
``ament_index_python.get_package_share_directory('eipl_trt')`` finds them (with a pip install,
set ``AMENT_PREFIX_PATH`` to the environment's prefix; see README).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "eipl_trt"
HERE = os.path.dirname(os.path.abspath(__file__))


def package_version() -> str:
    """The version in package.xml, the package's one version string.

    ``eipl_trt.__version__`` repeats it; ``test/test_version.py`` checks that the two and
    CHANGELOG.rst's newest entry agree.
    """
    version = ET.parse(os.path.join(HERE, "package.xml")).getroot().findtext("version")
    if not version or not version.strip():
        raise RuntimeError("package.xml has no <version>")
    return version.strip()


def tree(src: str, dest_root: str) -> list[tuple[str, list[str]]]:
    """data_files entries that mirror the directory ``src`` under ``share/eipl_trt/dest_root``."""
    entries: list[tuple[str, list[str]]] = []
    for dirpath, _dirnames, filenames in os.walk(src):
        files = [os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith(".")]
        if files:
            rel = os.path.relpath(dirpath, src)
            dest = os.path.normpath(os.path.join("share", PACKAGE, dest_root, rel))
            entries.append((dest, files))
    return entries


setup(
    name=PACKAGE,
    version=package_version(),
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.perspective")),
        *tree("engines", "engines"),
        *tree("data", "data"),
    ],
    python_requires=">=3.10",
    install_requires=["setuptools", "numpy>=1.23", "onnxruntime>=1.16", "onnx>=1.15", "pyyaml>=5.4"],
    extras_require={
        "models": ["torch>=2.1", "onnx>=1.15"],
        "bags": ["rosbags>=0.10", "matplotlib>=3.7", "tqdm>=4.60"],
        "sim": ["mujoco>=3.2", "gymnasium[mujoco]>=1.0", "pillow>=9"],
        # compressed images (JPEG/PNG) and YUV/Bayer frames: the library cv_bridge and image_transport use
        "camera": ["opencv-python-headless>=4.8"],
        "gpu": ["cuda-python>=12", "nvidia-ml-py"],
        # a second CPU backend (x86 and ARM): backend openvino; auto uses it where it is faster at parity
        "openvino": ["openvino>=2024.0"],
        "test": ["pytest>=7"],
    },
    zip_safe=True,
    maintainer="eipl_trt developers",
    maintainer_email="eipl-trt@example.com",
    description="Real-time inference of EIPL deep predictive learning models (SARNN, CNNRNN, CNNRNNLN) "
    "as a ROS 2 node, on TensorRT or ONNX Runtime.",
    license="MIT",
    entry_points={
        "console_scripts": [
            "eipl_trt_node = eipl_trt.ros.node:main",
            "eipl_trt_sim_robot = eipl_trt.sim.ros_robot:main",
            "eipl_trt_sim_expert = eipl_trt.sim.ros_expert:main",
            "eipl-trt = eipl_trt.cli:main",
        ],
    },
)
