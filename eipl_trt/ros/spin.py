"""Which rclpy executor runs the node, chosen by capability, and how it is spun.

Kinds (``eipl_trt_node --executor KIND``):

``events``
    ``rclpy.experimental.EventsExecutor``: a C++ event queue fed by the middleware's listener
    callbacks; no wait set is rebuilt in Python per wake-up, callbacks run in arrival order on one
    thread. Present in rclpy 9 (Kilted, Rolling) and in Jazzy's rclpy since 7.1.4 (the backport of
    ros2/rclpy#1391), absent from Humble's. Detected by importing it, never from a version string.
``single``
    ``rclpy.executors.SingleThreadedExecutor`` spun with ``spin()``: one wait set per wake-up,
    every ready callback dispatched from it (``spin_once`` in a loop would rebuild it per callback).
``multi``
    ``MultiThreadedExecutor(num_threads=4)`` spun with ``spin()``: the node's structure before
    issue #7, kept for A/B measurements only.

``auto`` (the default) = ``events`` where the installed rclpy has it, else ``single``. Whatever the
kind, the executor spins on a background thread and the main thread only waits, so SIGINT/SIGTERM
(raised there as KeyboardInterrupt) are handled within 0.1 s.

Why (scripts/measure_node_latency.py, bundled SARNN, 128x128 rgb8 at 30 Hz, 2 shared cores at load
9-17, 30 s per figure; README "Threads, executor and behaviour under load"): the node's CPU time per
frame with joint_states at 500 Hz was 25-30 ms with ``multi`` spun by ``spin_once`` (a wait set
rebuilt in Python and a thread-pool hand-off per message, GIL contention with the step), 15 ms
with ``single`` + step thread, 12-13 ms with ``events`` + step thread; the step's median went from
14 ms to 8 ms (7 ms without joint traffic). With the step inside the events executor's callback
instead of on :class:`~eipl_trt.ros.stepper.StepThread`, timer mode at 1 kHz joint_states fell to
24.5 steps/s with a 5.9 ms median timer jitter (step thread: 29/s, 0.6 ms).
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

__all__ = ["EXECUTOR_KINDS", "events_executor_class", "resolve_kind", "create_executor", "split_node_args",
           "SpinThread"]

EXECUTOR_KINDS = ("auto", "events", "single", "multi")


def events_executor_class() -> Any | None:
    """rclpy's ``EventsExecutor`` if this rclpy has it, else ``None``."""
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:
        return None
    return EventsExecutor


def resolve_kind(kind: str) -> str:
    """``auto`` -> ``events`` or ``single``; other kinds are checked.

    Raises:
        ValueError: an unknown kind, or ``events`` where rclpy has no EventsExecutor.
    """
    if kind not in EXECUTOR_KINDS:
        raise ValueError(f"--executor must be one of {', '.join(EXECUTOR_KINDS)}, got {kind!r}")
    has_events = events_executor_class() is not None
    if kind == "auto":
        return "events" if has_events else "single"
    if kind == "events" and not has_events:
        raise ValueError("--executor events: this rclpy has no rclpy.experimental.EventsExecutor (Humble, or Jazzy "
                         "before rclpy 7.1.4); use --executor single or auto")
    return kind


def create_executor(kind: str, context: Any = None) -> Any:
    """A new executor of a resolved ``kind`` (``events``, ``single`` or ``multi``) on ``context``
    (default: rclpy's default context)."""
    if kind == "events":
        return events_executor_class()(context=context)  # type: ignore[misc]
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    if kind == "multi":
        return MultiThreadedExecutor(num_threads=4, context=context)
    return SingleThreadedExecutor(context=context)


def split_node_args(argv: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Take ``--executor KIND`` and ``--step-thread``/``--no-step-thread`` out of a command line.

    Only arguments before ``--ros-args`` are looked at; the rest is returned unchanged for rclpy.

    Returns:
        ``({"executor": kind, "step_thread": bool | None}, remaining argv)``.

    Raises:
        ValueError: ``--executor`` without a value.
    """
    options: dict[str, Any] = {"executor": "auto", "step_thread": None}
    rest: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--ros-args":
            rest.extend(args[i:])
            break
        if arg == "--executor" or arg.startswith("--executor="):
            if "=" in arg:
                options["executor"] = arg.split("=", 1)[1]
            elif i + 1 < len(args):
                options["executor"] = args[i + 1]
                i += 1
            else:
                raise ValueError("--executor needs a value: " + ", ".join(EXECUTOR_KINDS))
        elif arg in ("--step-thread", "--no-step-thread"):
            options["step_thread"] = arg == "--step-thread"
        else:
            rest.append(arg)
        i += 1
    return options, rest


class SpinThread:
    """Spins ``executor`` on a daemon thread until :meth:`stop`; remembers an exception that ended it.

    rclpy 9.1.2's ``EventsExecutor`` deadlocks when ``shutdown()`` (or a context shutdown, which
    wakes it) is called from another thread while ``spin()`` runs, so an events executor is spun
    with ``spin_once(0.1 s)`` in a loop that a flag ends (each call is a C++ event dispatch, no wait
    set is rebuilt), and shut down only after its thread has returned. The wait-set executors run
    ``spin()``, which ``shutdown()`` from any thread ends.
    """

    def __init__(self, executor: Any, kind: str):
        self.executor = executor
        self.kind = kind
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="eipl_trt-executor", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            if self.kind == "events":
                while not self._stop.is_set():
                    self.executor.spin_once(timeout_sec=0.1)
            else:
                self.executor.spin()
        except BaseException as exc:  # ExternalShutdownException on context shutdown, or a callback's error
            self.error = exc

    def alive(self) -> bool:
        """True while the executor spins."""
        return self._thread.is_alive()

    def wait(self, timeout_s: float) -> None:
        """Block up to ``timeout_s`` s (or until spinning ends)."""
        self._thread.join(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop spinning, wait for the spin thread, and shut the executor down."""
        self._stop.set()
        if self.kind == "events":
            self._thread.join(timeout_s)
            self.executor.shutdown()
        else:
            self.executor.shutdown(timeout_sec=timeout_s)
            self._thread.join(timeout_s)
