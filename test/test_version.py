"""One version string: package.xml, setup.py, ``eipl_trt.__version__`` and CHANGELOG.rst agree."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import eipl_trt

REPO = Path(__file__).resolve().parents[1]


def package_xml_version() -> str:
    return (ET.parse(REPO / "package.xml").getroot().findtext("version") or "").strip()


def test_package_xml_has_a_semantic_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", package_xml_version()), package_xml_version()


def test_setup_py_and_the_module_report_package_xml_version(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("setuptools")
    from distutils.core import run_setup  # setuptools' copy; the stdlib one is gone in 3.12

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", ["setup.py"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dist = run_setup(str(REPO / "setup.py"), stop_after="init")
    assert dist.get_version() == package_xml_version() == eipl_trt.__version__


def test_cli_version_is_the_package_version() -> None:
    out = subprocess.run([sys.executable, "-m", "eipl_trt.cli", "--version"], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout
    assert out.split() == ["eipl-trt", package_xml_version()]


def test_changelog_is_in_the_ros_format_and_starts_at_this_version() -> None:
    """catkin_generate_changelog's layout: a title between ^ lines, then `X.Y.Z (YYYY-MM-DD)` over a - line."""
    lines = (REPO / "CHANGELOG.rst").read_text(encoding="utf-8").splitlines()
    assert lines[1] == "Changelog for package eipl_trt"
    assert lines[0] == lines[2] == "^" * len(lines[1])
    headers = [(i, m) for i, line in enumerate(lines) if (m := re.fullmatch(r"(\d+\.\d+\.\d+) \((\d{4}-\d{2}-\d{2})\)", line))]
    assert headers, "no version entries"
    assert headers[0][1].group(1) == package_xml_version(), "CHANGELOG.rst's newest entry is not package.xml's version"
    versions = [tuple(int(x) for x in m.group(1).split(".")) for _, m in headers]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions)
    dates = [m.group(2) for _, m in headers]
    assert dates == sorted(dates, reverse=True)
    for i, m in headers:
        assert lines[i + 1] == "-" * len(lines[i]), f"underline of {lines[i]!r}"
        assert lines[i + 2].startswith("* "), f"{lines[i]!r}: entries are bullets"
