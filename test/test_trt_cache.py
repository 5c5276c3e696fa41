"""The engine cache: miss then hit, corrupt and other-version plans rebuilt with one warning, concurrent builds."""

from __future__ import annotations

import logging
import multiprocessing
import time

import pytest

from eipl_trt.paths import resolve_model
from eipl_trt.runners.tensorrt import TrtRunner
from eipl_trt.runners.tensorrt.cache import default_cache_dir
from standins.install import install


def _open(spec, tmp_path):  # noqa: ANN001, ANN202
    runner = TrtRunner(spec, cache_dir=tmp_path, cuda_graphs=False).open()
    res = runner.cache_result
    runner.close()
    return res


def test_miss_then_hit(monkeypatch, tmp_path):
    trt, _ = install(monkeypatch, "10.3.0")
    spec = resolve_model("sarnn")
    first = _open(spec, tmp_path)
    second = _open(spec, tmp_path)
    assert (first.status, second.status) == ("built", "hit") and first.path == second.path
    assert trt.FAKE_CONTEXT.engines_built == 1
    assert second.path.with_suffix(".json").is_file()
    assert list(tmp_path.glob("timing-*.cache"))
    assert not list(tmp_path.glob(".*.tmp"))


def test_key_changes_with_precision_relevant_fields(monkeypatch, tmp_path):
    install(monkeypatch, "10.3.0")
    spec = resolve_model("sarnn")
    from eipl_trt.runners.tensorrt.builder import BuildOptions

    a = _open(spec, tmp_path).path
    b = TrtRunner(spec, cache_dir=tmp_path, build_options=BuildOptions(optimization_level=5)).open()
    assert b.cache_result.status == "built" and b.cache_result.path != a
    b.close()
    install(monkeypatch, "10.13.0.35")
    assert _open(spec, tmp_path).path != a  # another TensorRT version: another plan


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_plan_is_rebuilt_with_one_warning(damage, monkeypatch, tmp_path, caplog):
    install(monkeypatch, "8.6.1")
    spec = resolve_model("sarnn")
    path = _open(spec, tmp_path).path
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x00" * 4096, "empty": b""}[damage])
    with caplog.at_level(logging.WARNING, logger="eipl_trt.runners.tensorrt.cache"):
        res = _open(spec, tmp_path)
    assert res.status == "rebuilt"
    warnings = [r for r in caplog.records if r.name == "eipl_trt.runners.tensorrt.cache"]
    assert len(warnings) == 1 and "rebuilding" in warnings[0].getMessage()
    assert path.read_bytes() == data  # the stand-in's builds are deterministic
    assert _open(spec, tmp_path).status == "hit"


def test_other_version_plan_is_rebuilt(monkeypatch, tmp_path, caplog):
    install(monkeypatch, "10.13.0.35")
    spec = resolve_model("sarnn")
    path = _open(spec, tmp_path).path
    install(monkeypatch, "10.3.0")
    foreign = _open(spec, tmp_path / "old").path.read_bytes()
    install(monkeypatch, "10.13.0.35")
    path.write_bytes(foreign)  # e.g. a cache directory copied from a robot with another JetPack
    with caplog.at_level(logging.WARNING):
        res = _open(spec, tmp_path)
    assert res.status == "rebuilt"
    assert any("Version tag does not match" in r.getMessage() for r in caplog.records)


def _build_in_child(version: str, cache_dir: str, queue) -> None:  # noqa: ANN001
    import pytest as _pytest

    from standins.install import install as _install

    mp = _pytest.MonkeyPatch()
    trt, _ = _install(mp, version)
    original = trt.FAKE_CONTEXT.classes["Builder"].build_serialized_network

    def slow(self, network, config):  # noqa: ANN001, ANN202 - widen the race window
        time.sleep(0.3)
        return original(self, network, config)

    trt.FAKE_CONTEXT.classes["Builder"].build_serialized_network = slow
    res = _open(resolve_model("sarnn"), cache_dir)
    queue.put(res.status)


def test_concurrent_builds_build_once(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_build_in_child, args=("10.3.0", str(tmp_path), queue)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    statuses = sorted(queue.get(timeout=5) for _ in procs)
    assert all(p.exitcode == 0 for p in procs)
    assert statuses == ["built", "hit", "hit"]
    assert len(list(tmp_path.glob("*.plan"))) == 1 and not list(tmp_path.glob(".*.tmp"))


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("EIPL_TRT_ENGINE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "eipl_trt" / "engines"
    monkeypatch.setenv("EIPL_TRT_ENGINE_CACHE", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
