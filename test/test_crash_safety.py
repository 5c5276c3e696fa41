"""kill -9 at random points during every writer: the previous complete file or none, never a torn one.

Each scenario runs one of the package's writers in a loop in a child process and kills it with
SIGKILL after a random delay (0 to 2 times the writer's cycle time, so kills land before,
inside and between writes; the last kill waits for one completed write first, so the test sees the
file change), several times over the same output directory; after every kill each
visible file is checked: it loads, and a model's files match the sha256 that ``model.json``
records. A last check truncates the largest file and expects the checker to refuse it (the check
can fail).

The children are forked from one helper process (this file run as a script) that imports torch,
ONNX Runtime and MuJoCo once and never runs a writer itself (MuJoCo's renderer deadlocks in a child
forked after it started), so each kill costs milliseconds rather than an interpreter start. The
evaluate report's plot is rendered once and reused: the test is about the writes, and matplotlib
takes seconds per figure on a loaded machine.
Writers: ONNX export (``model.onnx`` + ``model.json``), training outputs (``model.pth``,
``log.csv``, ``metrics.json``), evaluate reports, bench reports, rosbags from ``eipl-trt sim`` and
simulated EIPL datasets.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]
KILLS = 5
PNG_END = b"IEND\xaeB`\x82"


class Torn(AssertionError):
    """A file that does not load, or does not match the sha256 model.json records."""


def visible(out: Path) -> list[Path]:
    """Files a user sees (temporary ``.name.*.tmp`` files and ``.old`` directories are hidden)."""
    return sorted(p for p in out.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(out).parts))


def _text(path: Path, ends: str = "\n") -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # cut inside a multi-byte character
        raise Torn(f"{path}: {exc}") from exc
    if not text.endswith(ends):
        raise Torn(f"{path} does not end with {ends!r}")
    return text


def _json(path: Path) -> Any:
    try:
        return json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise Torn(f"{path}: {exc}") from exc


def _csv_rows(path: Path, rows: int | None = None) -> list[list[str]]:
    table = list(csv.reader(io.StringIO(_text(path))))
    if any(len(r) != len(table[0]) for r in table) or (rows is not None and len(table) != rows):
        raise Torn(f"{path}: {len(table)} rows of unequal width (expected {rows})")
    return table


# ------------------------------------------------------------------ checkers (in the test process)
def check_export(out: Path) -> str:
    import onnx

    from eipl_trt.errors import ModelError
    from eipl_trt.spec import ModelSpec

    model_dir = out / "model"
    if (model_dir / "model.onnx").exists():
        try:
            onnx.checker.check_model(onnx.load(str(model_dir / "model.onnx")))
        except Exception as exc:
            raise Torn(f"model.onnx does not load: {exc}") from exc
    if not (model_dir / "model.json").exists():
        return "none"
    try:
        spec = ModelSpec.load(model_dir)
        for precision in spec.variants:
            spec.verify_variant(precision)  # sha256 of the file == the one model.json records
    except ModelError as exc:
        raise Torn(str(exc)) from exc
    return spec.variants["fp32"].sha256


def check_train_outputs(out: Path) -> str:
    import torch

    version = "none"
    if (out / "model.pth").exists():
        try:
            ckpt = torch.load(out / "model.pth", weights_only=True)
        except Exception as exc:
            raise Torn(f"model.pth does not load: {exc}") from exc
        _fixture_model("cnnrnn_small").load_state_dict(ckpt["model_state_dict"])
        version = f"epoch {ckpt['epoch']}"
    if (out / "log.csv").exists():
        _csv_rows(out / "log.csv")
    if (out / "metrics.json").exists():
        _json(out / "metrics.json")["epoch"]
    return version


def check_report(out: Path) -> str:
    expect = json.loads((out / ".expect.json").read_text())
    rep = out / "report"
    version = "none"
    if (rep / "metrics.json").exists():
        version = _json(rep / "metrics.json")["source"]
    if (rep / "report.md").exists():
        if "hold-last" not in _text(rep / "report.md").lower():
            raise Torn("report.md lacks its table")
    if (rep / "steps.csv").exists():
        _csv_rows(rep / "steps.csv", expect["csv_rows"])
    if (rep / "plot.png").exists():
        data = (rep / "plot.png").read_bytes()
        if not (data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(PNG_END)):
            raise Torn("plot.png is not a whole PNG")
    return version


def check_bench(out: Path) -> str:
    rep = out / "bench"
    version = "none"
    if (rep / "environment.json").exists():
        version = str(_json(rep / "environment.json")["iteration"])
    if (rep / "bench.md").exists():
        lines = _text(rep / "bench.md").splitlines()
        if not lines[-1].startswith("- iteration: "):
            raise Torn("bench.md is cut short")
    if (rep / "bench.csv").exists():
        _csv_rows(rep / "bench.csv", 1 + 2 * 4)  # header, 2 backends x 4 stages
    return version


def check_bags(out: Path) -> str:
    import yaml
    from rosbags.rosbag2 import Reader

    bags = sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    for bag in bags:
        try:
            expected = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
            with Reader(bag) as reader:
                count = sum(1 for _ in reader.messages())
        except Exception as exc:
            raise Torn(f"bag {bag.name} does not read: {exc!r}") from exc
        if count != expected["message_count"] or count == 0:
            raise Torn(f"bag {bag.name}: {count} messages, metadata says {expected['message_count']}")
    return f"{len(bags)} bags"


def check_dataset(out: Path) -> str:
    import numpy as np

    ds = out / "ds"
    if not ds.exists():
        return "none"
    summary = _json(ds / "dataset.json")
    try:
        for split, n in (("train", 1), ("test", 1)):
            images, joints = np.load(ds / split / "images.npy"), np.load(ds / split / "joints.npy")
            if images.shape[:2] != (n, 10) or joints.shape != (n, 10, 7):
                raise Torn(f"{split} arrays have shapes {images.shape}, {joints.shape}")
        np.load(ds / "joint_bounds.npy")
    except (ValueError, EOFError, OSError) as exc:  # numpy's errors for a cut .npy
        raise Torn(f"dataset array does not load: {exc}") from exc
    return f"seed {summary['seed']}"


# ------------------------------------------------------------------ writers (in the forked children)
def _fixture_model(kind: str) -> Any:
    import torch

    from eipl_trt.models import build_model

    torch.manual_seed(0)
    if kind == "sarnn_small":
        return build_model("sarnn", rec_dim=50, im_size=(64, 64), leaky_slope=0.3)
    return build_model("cnnrnn", rec_dim=20, joint_dim=8)


def prepare(name: str, out: Path) -> Any:
    if name == "export":
        return _fixture_model("sarnn_small")
    if name == "train_outputs":
        return _fixture_model("cnnrnn_small")
    if name == "report":
        import dataclasses

        from eipl_trt.evaluate import evaluate, load_for_model
        from eipl_trt.evaluate.report import _csv
        from eipl_trt.paths import resolve_model

        spec = resolve_model("sarnn")
        episodes = [dataclasses.replace(e, images=e.images[:8], joints=e.joints[:8], stamps=e.stamps[:8])
                    for e in load_for_model(ROOT / "data" / "pusher_sample", spec)[:2]]
        import eipl_trt.evaluate.report

        report = evaluate(spec, episodes, backend="onnxruntime", num_threads=1)
        (out / ".expect.json").write_text(json.dumps({"csv_rows": _csv(report).count("\n")}))
        # matplotlib takes seconds per figure on a loaded 2-core machine: render it once, so the
        # kills land in write_report's writes rather than in its plotting
        png = eipl_trt.evaluate.report._plot_png(report)
        eipl_trt.evaluate.report._plot_png = lambda _report: png  # type: ignore[assignment]
        return report
    if name == "bench":
        from eipl_trt.bench import BenchResult

        return [BenchResult("sarnn", b, "fp32", stages={s: [0.001 * (i + 1) for i in range(50)] for s in st})
                for b, st in (("onnxruntime", ("preprocess", "inference", "postprocess", "total")),
                              ("torch", ("preprocess", "inference", "postprocess", "total")))]
    if name == "dataset":
        import eipl_trt.sim.record  # noqa: F401 - MuJoCo loaded before the child says it is ready
    return None


def child_loop(name: str, fixture: Any, out: Path, start: int) -> None:
    """Write until killed; ``.done`` holds the last iteration completed."""
    try:
        i = start
        while True:
            write(name, fixture, out, i)
            (out / ".done").write_text(str(i))
            i += 1
    except BaseException:
        (out / ".child-error").write_text(traceback.format_exc())
    finally:
        os._exit(1)


def write(name: str, fixture: Any, out: Path, i: int) -> None:
    if name == "export":
        import torch

        from eipl_trt.models import architecture_of
        from eipl_trt.models.export import export_onnx
        from eipl_trt.models.testing import default_test_bounds

        with torch.no_grad():
            # a new model for each iteration, so a new sha256: every child is forked from the same
            # fixture, so the weights must follow the iteration number, not count the child's own writes
            next(fixture.parameters()).view(-1)[0] = 1e-3 * i
        export_onnx(fixture, "sarnn", out / "model", architecture=architecture_of(fixture),
                    joint_bounds=default_test_bounds(8), image_size=(64, 64), producer={"iteration": i})
    elif name == "train_outputs":
        from eipl_trt.train.outputs import save_checkpoint, write_log, write_metrics

        save_checkpoint(out / "model.pth", fixture, i, 0.1, 0.2)
        write_log(out / "log.csv", [{"epoch": e, "train_loss": 0.1, "test_loss": 0.2} for e in range(i % 50 + 1)])
        write_metrics(out / "metrics.json", {"epoch": i, "test_loss": 0.2})
    elif name == "report":
        from eipl_trt.evaluate import write_report

        fixture.source = f"iteration {i}"
        write_report(fixture, out / "report")
    elif name == "bench":
        from eipl_trt.bench import write_reports

        write_reports(fixture, {"cpu": "test", "iteration": str(i)}, out / "bench")
    elif name == "bags":
        import numpy as np

        from eipl_trt.sim.bagwrite import BagEpisode, write_episodes_bag

        rng = np.random.default_rng(i)
        episode = BagEpisode(image_times_s=np.arange(20) * 0.1, images=rng.integers(0, 255, (20, 64, 64, 3), np.uint8),
                             joint_times_s=np.arange(100) * 0.02, joint_positions=rng.normal(size=(100, 7)))
        write_episodes_bag(out / f"bag{i}", [episode, episode], joint_names=[f"j{k}" for k in range(7)])
    elif name == "dataset":
        from eipl_trt.sim.record import generate_dataset

        generate_dataset(out / "ds", n_train=1, n_test=1, seed=i, steps=10, image_size=64, bag=False,
                         overwrite=True, progress=False)
    else:
        raise ValueError(name)


def zygote() -> None:
    """Serve ``prepare NAME OUT 0`` and ``run NAME OUT START`` lines on stdin (module docstring)."""
    import logging
    import warnings

    try:
        import torch

        torch.set_num_threads(1)  # no OpenMP pool to break in forked children
    except ImportError:  # the writers that need it are skipped
        pass
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed children are reaped by the kernel
    fixtures: dict[str, Any] = {}
    for line in sys.stdin:
        cmd, name, out_s, arg = line.split()
        out = Path(out_s)
        try:
            if cmd == "prepare":
                fixtures[name] = prepare(name, out)
                reply = "ok"
            else:
                pid = os.fork()
                if pid == 0:  # the child: write until killed
                    child_loop(name, fixtures[name], out, int(arg))
                reply = str(pid)
        except Exception:
            reply = "error " + traceback.format_exc().replace("\n", " | ")
        sys.stdout.write(reply + "\n")
        sys.stdout.flush()


# ------------------------------------------------------------------ the test
CHECKS: dict[str, tuple[Callable[[Path], str], tuple[str, ...]]] = {
    "export": (check_export, ("torch", "onnx")),
    "train_outputs": (check_train_outputs, ("torch",)),
    "report": (check_report, ("matplotlib", "rosbags")),
    "bench": (check_bench, ()),
    "bags": (check_bags, ("rosbags",)),
    "dataset": (check_dataset, ("mujoco", "gymnasium")),
}
#: Fewer kills for the writer whose cycle takes seconds on a loaded 2-core machine.
KILLS_OF = {"dataset": 3}


@pytest.fixture(scope="module")
def helper() -> Any:
    proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env=_helper_env())

    def ask(line: str) -> str:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        reply = proc.stdout.readline().strip()
        assert reply and not reply.startswith("error"), reply.replace(" | ", "\n")
        return reply

    yield ask
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


def _wait_for(path: Path, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        error = path.parent / ".child-error"
        assert not error.exists(), error.read_text()
        assert time.monotonic() < deadline, f"no {path.name} after {timeout_s} s"
        time.sleep(0.005)


def _start(name: str, out: Path, start: int, helper: Any) -> int:
    """Fork a writer loop from the helper; returns its pid."""
    (out / ".done").unlink(missing_ok=True)
    return int(helper(f"run {name} {out} {start}"))


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.002)
    raise RuntimeError(f"writer {pid} survived SIGKILL")


def _helper_env() -> dict[str, str]:
    import eipl_trt

    # the helper imports the same eipl_trt as this process (working tree or installed copy)
    path = os.pathsep.join([str(Path(eipl_trt.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "EIPL_TRT_PROGRESS": "off", "PYTHONPATH": path}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHECKS))
def test_kill_9_leaves_previous_or_no_file_never_a_torn_one(name: str, helper: Any, tmp_path: Path) -> None:
    check, needs = CHECKS[name]
    for module in needs:
        pytest.importorskip(module)
    out = tmp_path / name
    out.mkdir()
    helper(f"prepare {name} {out} 0")
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    pid = _start(name, out, 0, helper)
    _wait_for(out / ".done")  # the first version (after one-time imports and warm-up)
    t0 = time.monotonic()
    while (out / ".done").read_text() == "0":
        time.sleep(0.002)
    cycle_s = time.monotonic() - t0  # a steady-state write
    _kill(pid)
    versions = [check(out)]
    mid_write = 0
    kills = KILLS_OF.get(name, KILLS)
    for k in range(1, kills + 1):
        pid = _start(name, out, 1000 * k, helper)
        if k == kills:  # the last kill comes after a completed write, so the test sees the file change
            _wait_for(out / ".done")
        time.sleep(rng.uniform(0.0, 2.0) * cycle_s)
        _kill(pid)
        error = out / ".child-error"
        assert not error.exists(), error.read_text()
        mid_write += any(p.name.endswith(".tmp") for p in out.rglob(".*"))
        try:
            versions.append(check(out))
        except Torn as exc:
            pytest.fail(f"torn file after kill {k} (seed {seed}, {name}): {exc}")
    print(f"\n{name}: {kills} kills (seed {seed}), cycle {cycle_s * 1e3:.0f} ms, temporary files seen after "
          f"{mid_write} of them, versions seen {len(set(versions))}, torn files 0")
    assert len(set(versions)) >= 2, f"no write completed between the kills ({versions}); the test proved nothing"
    # the checker refuses a torn file (with Torn: a checker that crashes on it proves nothing): cut the largest in half
    largest = max(visible(out), key=lambda p: p.stat().st_size)
    largest.write_bytes(largest.read_bytes()[: largest.stat().st_size // 2])
    with pytest.raises(Torn):
        check(out)


def test_checker_sees_a_mismatched_sha256(tmp_path: Path) -> None:
    """A model.onnx that loads but is not the one model.json names counts as torn."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    model = _fixture_model("sarnn_small")
    write("export", model, tmp_path, 0)
    spec_path = tmp_path / "model" / "model.json"
    spec = json.loads(spec_path.read_text())
    check_export(tmp_path)
    spec["variants"]["fp32"]["sha256"] = hashlib.sha256(b"another model").hexdigest()
    spec_path.write_text(json.dumps(spec))
    with pytest.raises(Torn, match="sha256|SHA-256|changed"):
        check_export(tmp_path)


if __name__ == "__main__":
    zygote()
