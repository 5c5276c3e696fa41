"""Starting, watching and stopping the processes of a simulated run (robot, node, expert), as a launch file would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from eipl_trt.errors import EipltrtError

__all__ = ["ros_command", "script", "env", "stop", "tail", "wait_for_robot"]


def tail(path: Path, n: int = 3000) -> str:
    """The end of a log file ("" when there is none)."""
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


def script(name: str, module: str) -> list[str]:
    script = Path(sys.executable).with_name(name)
    return [str(script)] if script.is_file() else [sys.executable, "-m", module]


def ros_command(executable: Sequence[str], params: dict[str, Any], remaps: Sequence[tuple[str, str]] = ()) -> list[str]:
    """``executable --ros-args -p name:=value ... -r from:=to ...``: every parameter given, empty strings too."""
    from eipl_trt.sim.launch_plan import format_value

    args = [a for k, v in params.items() for a in ("-p", f"{k}:={format_value(v)}")]
    args += [a for src, dst in remaps for a in ("-r", f"{src}:={dst}")]
    return [*executable, "--ros-args", *args]


def env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    return env


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)



def wait_for_robot(robot: subprocess.Popen[bytes], others: Sequence[tuple[str, subprocess.Popen[bytes], Path]],
                   results: Path, progress: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Wait for the robot to finish its episodes, failing (with its log) if any of ``others`` exits first.

    Args:
        robot: the simulated robot's process.
        others: (name, process, log) of the processes that must outlive it (the node, the expert).
        results: the robot's results file, read for ``progress`` while it runs.
        progress: called with the results so far.
    """
    while robot.poll() is None:
        for name, proc, log in others:
            if proc.poll() is not None:
                raise EipltrtError(f"the {name} exited with code {proc.returncode} during the run; its log ({log}):\n"
                                   f"{tail(log)}")
        if progress is not None and results.exists():
            try:
                progress(json.loads(results.read_text()))
            except (OSError, ValueError):
                pass
        time.sleep(0.5)


