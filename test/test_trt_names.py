"""Every TensorRT name the runner touches exists in the real TensorRT of each version it claims.

``test/data/trt_api/tensorrt-<version>.txt`` lists the trailing identifiers of the printable
strings of each real ``tensorrt*.so`` (plus its ``__init__.py`` names), extracted from the
``tensorrt*-bindings`` wheels by ``scripts/trt_api_names.py``. The linker merges string tails, so
a name is present when some listed string ends with it.
"""

from __future__ import annotations

import inspect
import re
from functools import lru_cache

import numpy as np
import pytest

from eipl_trt.paths import resolve_model
from eipl_trt.runners.tensorrt import TrtRunner
from eipl_trt.runners.tensorrt.inspect import layer_table, profile_layers
from standins import fake_cuda
from standins.fake_tensorrt.api import ENUMS, MEMBERS, MODULE, SEVERITIES
from standins.install import install
from trt_helpers import ROOT, VERSIONS, episode, fp16_io_variant


@lru_cache(maxsize=None)
def real_names(version: str) -> tuple[str, ...]:
    path = ROOT / "test" / "data" / "trt_api" / f"tensorrt-{version}.txt"
    return tuple(line for line in path.read_text().splitlines()[1:] if line)


def present(version: str, name: str) -> bool:
    return any(s.endswith(name) for s in real_names(version))


@pytest.mark.parametrize("version", VERSIONS)
def test_standin_api_exists_in_the_real_bindings(version):
    major = int(version.split(".")[0])
    names = [n for table in (MEMBERS, ENUMS) for members in table.values() for n, vs in members.items() if major in vs]
    names += [n for n, vs in MODULE.items() if major in vs] + list(SEVERITIES)
    missing = sorted({n for n in names if not present(version, n)})
    assert not missing, f"the TensorRT {version} stand-in has names the real {version} bindings lack: {missing}"


@pytest.mark.parametrize("version", VERSIONS)
def test_names_the_real_bindings_lack_are_absent_from_the_standin(version, monkeypatch):
    """E.g. EXPLICIT_BATCH in 11, STRONGLY_TYPED in 8.6, create_execution_context_without_device_memory in 11."""
    trt, _ = install(monkeypatch, version)
    for table in (MEMBERS, ENUMS):
        for cls, members in table.items():
            for name in members:
                if not present(version, name):
                    owner = getattr(trt, cls, None)
                    attr = getattr(trt.FAKE_CONTEXT.classes.get(cls), "_allowed", None)
                    assert (attr is not None and name not in attr) or (owner is not None and not hasattr(owner, name)) \
                        or owner is None, f"{cls}.{name} is absent from TensorRT {version} but the stand-in has it"


@pytest.mark.parametrize("version", VERSIONS)
def test_every_name_the_runner_touches_exists(version, monkeypatch, tmp_path):
    trt, _ = install(monkeypatch, version)
    spec = resolve_model("sarnn")
    inputs = episode(spec, 4)
    for graphs in (True, False):
        with TrtRunner(spec, cache_dir=tmp_path, cuda_graphs=graphs) as runner:
            for image, joint in inputs:
                runner.infer(image, joint)
            runner.set_state(runner.get_state())
            if not graphs:
                assert layer_table(runner)
                assert profile_layers(runner, 2)
    touched = sorted(trt.FAKE_ACCESSED)
    names = {t.rsplit(".", 1)[-1] for t in touched}
    missing = sorted(n for n in names if not present(version, n))
    print(f"names check TensorRT {version}: {len(names)} names touched, {len(missing)} missing: {touched}")
    assert not missing
    assert names >= {"execute_async_v3", "set_tensor_address", "build_serialized_network", "deserialize_cuda_engine"}


_SIG = re.compile(r"^(\w+)\((.*)\)")


def _real_params(fn) -> list[str]:  # noqa: ANN001
    m = _SIG.match(fn.__doc__.strip().splitlines()[0])
    assert m, fn.__doc__[:80]
    return [p.strip().split(":")[0].split()[-1] for p in m.group(2).split(",") if p.strip()]


@pytest.mark.parametrize("name", fake_cuda.FUNCTIONS)
def test_fake_cuda_matches_installed_cuda_python(name):
    real = pytest.importorskip("cuda.bindings.runtime")
    fake = getattr(fake_cuda.make_cudart(fake_cuda.FakeGpu()), name)
    assert _real_params(getattr(real, name)) == list(inspect.signature(fake.__wrapped__).parameters)
    if real.cudaGetDeviceCount()[0] == real.cudaError_t.cudaSuccess:
        return  # calling the real function with dummy handles on a GPU machine is not safe
    args = [real.cudaMemcpyKind.cudaMemcpyHostToDevice if p == "kind" else
            real.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal if p == "mode" else
            real.cudaError_t.cudaErrorInvalidValue if p == "error" else 0 for p in _real_params(getattr(real, name))]
    result = getattr(real, name)(*args)  # null handles: without a GPU every call returns its error tuple
    expected_len = 1 if name in fake_cuda._NO_VALUE else 2
    assert isinstance(result, tuple) and len(result) == expected_len, (name, result)


def test_cuda_enums_are_the_installed_ones():
    real = pytest.importorskip("cuda.bindings.runtime")
    assert fake_cuda.cudaError_t is real.cudaError_t and fake_cuda.cudaMemcpyKind is real.cudaMemcpyKind
    assert np.int64(fake_cuda.cudaStreamNonBlocking) == real.cudaStreamNonBlocking


#: names the runner uses only behind a capability check (``hasattr``), so they may be absent in a version
CAPABILITY_CHECKED = {"STRONGLY_TYPED": "builder.network_mode", "EXPLICIT_BATCH": "used only where STRONGLY_TYPED is absent"}


def test_static_trt_references_exist():
    """Every ``trt.X`` / ``trt.X.Y`` in the runner's source exists in every version, except capability-checked ones
    (which must exist in at least one and be absent only where the check routes around them)."""
    sources = sorted((ROOT / "eipl_trt" / "runners" / "tensorrt").glob("*.py"))
    sources += [ROOT / "eipl_trt" / "cli" / "build.py", ROOT / "eipl_trt" / "cli" / "inspect.py"]
    refs = set()
    for path in sources:
        refs.update(re.findall(r"\btrt\.([A-Za-z_]+(?:\.[A-Za-z_]+)?)", path.read_text()))
    assert {"Builder", "Runtime", "OnnxParser", "NetworkDefinitionCreationFlag.STRONGLY_TYPED"} <= refs
    problems = []
    for ref in sorted(refs):
        name = ref.rsplit(".", 1)[-1]
        if name.startswith("__") and name != "__version__":
            continue
        have = [v for v in VERSIONS if present(v, name)]
        if name in CAPABILITY_CHECKED:
            if not have:
                problems.append(f"{ref}: in no version")
        elif have != list(VERSIONS):
            problems.append(f"{ref}: missing in {sorted(set(VERSIONS) - set(have))}")
    assert not problems
    # the capability checks route correctly: STRONGLY_TYPED exactly where EXPLICIT_BATCH is not required
    assert not present("8.6.1", "STRONGLY_TYPED") and present("8.6.1", "EXPLICIT_BATCH")
    assert present("11.4.0.106", "STRONGLY_TYPED") and not present("11.4.0.106", "EXPLICIT_BATCH")


@pytest.mark.parametrize("version", VERSIONS)
def test_names_on_the_fp16_and_workspace_paths(version, monkeypatch, tmp_path):
    """The fp16 build path (BuilderFlag.FP16 on 8.6, strongly typed elsewhere) and a workspace limit."""
    from eipl_trt.runners.tensorrt.builder import BuildOptions

    trt, _ = install(monkeypatch, version)
    spec = fp16_io_variant(tmp_path)
    with TrtRunner(spec, "fp16", cache_dir=tmp_path / "c", build_options=BuildOptions(workspace_mib=64)) as runner:
        runner.infer(*episode(spec, 1)[0])
    touched = {t.rsplit(".", 1)[-1] for t in trt.FAKE_ACCESSED}
    assert not [n for n in touched if not present(version, n)]
    assert ("FP16" in touched) == (version == "8.6.1") and "WORKSPACE" in touched
