"""Helpers for the node tests: start ``eipl_trt_node`` as a real process and talk to it over real DDS.

* :func:`new_domain_id` gives each test module its own ``ROS_DOMAIN_ID`` (1..101, from the pid
  and a counter), used by both the node process and the test's own rclpy context.
* :class:`NodeProcess` starts the node the way the launch file does (console script,
  ``--ros-args --params-file <yaml> -p ...``), captures its log, stops it with SIGINT.
* :class:`RosClient` is the test side: an rclpy context + node + background executor, with
  publishers, message collectors and blocking service calls.
* :class:`NodeBarrier` waits until the node has handled what the test sent so far (no sleeps).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

import eipl_trt

REPO = Path(eipl_trt.__file__).resolve().parent.parent
_COUNTER = itertools.count()


def new_domain_id() -> int:
    """A ROS domain id in 1..101 that differs between test modules and concurrent pytest runs."""
    return 1 + (os.getpid() * 13 + next(_COUNTER) * 37) % 101


def node_command() -> list[str]:
    """The installed ``eipl_trt_node`` console script, or ``python -m eipl_trt.ros.node`` without one."""
    script = Path(sys.executable).parent / "eipl_trt_node"
    if script.is_file():
        return [str(script)]
    found = shutil.which("eipl_trt_node")
    return [found] if found else [sys.executable, "-m", "eipl_trt.ros.node"]


def write_params(path: Path, **overrides: Any) -> Path:
    """``config/eipl_trt.yaml`` with some values replaced, written to ``path``."""
    data = yaml.safe_load((REPO / "config" / "eipl_trt.yaml").read_text())
    data["/**"]["ros__parameters"].update(overrides)
    path.write_text(yaml.safe_dump(data))
    return path


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


class ProcessUnderTest:
    """A ROS 2 program in its own process, in domain ``domain_id``, its output captured in ``log_path``.

    The working tree is put first on ``PYTHONPATH`` so a console script runs the code under test
    even when an older copy of the package is installed.
    """

    what = "process"

    def __init__(self, log_path: Path, domain_id: int, command: Sequence[str]):
        env = dict(os.environ)
        env["ROS_DOMAIN_ID"] = str(domain_id)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["PYTHONUNBUFFERED"] = "1"
        env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.args = list(command)
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGINT, wait, return the exit code (kills it and fails if it does not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.what} did not exit within {timeout} s of SIGINT:\n{self.log()[-3000:]}")
        self._log.close()
        return int(self.proc.returncode)


class NodeProcess(ProcessUnderTest):
    """``eipl_trt_node`` in its own process (see :class:`ProcessUnderTest`)."""

    what = "node"

    def __init__(self, log_path: Path, domain_id: int, params_file: Path, extra: Sequence[str] = ()):
        super().__init__(log_path, domain_id, [*node_command(), "--ros-args", "--params-file", str(params_file), *extra])


class Collector:
    """Keeps every message of one subscription (thread-safe)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.subscription: Any = None
        self._lock = threading.Lock()

    def __call__(self, msg: Any) -> None:
        with self._lock:
            self.messages.append(msg)

    def snapshot(self) -> list[Any]:
        """A copy of the messages so far."""
        with self._lock:
            return list(self.messages)

    def clear(self) -> None:
        """Forget the messages so far."""
        with self._lock:
            self.messages.clear()

    def wait_matched(self, timeout: float = 20.0) -> None:
        """Wait until a publisher matched the subscription (messages sent before that are lost)."""
        wait_for(lambda: self.subscription.get_publisher_count() > 0, timeout,
                 f"a publisher on {self.subscription.topic_name}")

    def wait(self, predicate: Callable[[Any], bool], timeout: float, what: str) -> Any:
        """The first message (old or new) matching ``predicate``."""
        return wait_for(lambda: next((m for m in self.snapshot() if predicate(m)), None), timeout, what)


class NodeBarrier:
    """A round trip to a node's ``get_parameters`` service, after which the node has handled what was sent before.

    The node's executor runs callbacks in the order their messages reached it (the events executor's
    queue; a wait set hands subscriptions out before services), and on one host one participant's
    messages to another arrive in the order they were sent. So when the answer comes back, the node
    has run the callbacks of every message this client published before the call: e.g. its
    ``joint_states`` callback, before the image that steps the model goes out. (``wait_for_all_acked``
    cannot say so: the node's sensor readers are best effort and acknowledge nothing.)
    """

    def __init__(self, client: "RosClient", node: str, timeout: float = 20.0):
        from rcl_interfaces.srv import GetParameters

        self._request = GetParameters.Request(names=[])
        self._client = client.node.create_client(GetParameters, f"{node}/get_parameters")
        self._node = node
        if not self._client.wait_for_service(timeout_sec=timeout):
            raise AssertionError(f"{node}/get_parameters not available within {timeout} s")

    def __call__(self, timeout: float = 10.0) -> None:
        """Block until the node answered (it has handled everything sent before this call)."""
        future = self._client.call_async(self._request)
        wait_for(future.done, timeout, f"{self._node} to answer get_parameters")


class RosClient:
    """The test side of the conversation, in its own rclpy context and domain."""

    def __init__(self, domain_id: int, name: str = "eipl_trt_test"):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except (ExternalShutdownException, Exception):
            pass

    def publisher(self, msg_type: Any, topic: str, depth: int = 10) -> Any:
        """A reliable publisher."""
        return self.node.create_publisher(msg_type, topic, depth)

    def collect(self, msg_type: Any, topic: str, depth: int = 100) -> Collector:
        """Subscribe (reliable) and collect every message."""
        collector = Collector()
        collector.subscription = self.node.create_subscription(msg_type, topic, collector, depth)
        return collector

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 10.0) -> Any:
        """Call a service and wait for the response."""
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise AssertionError(f"service {name} not available within {timeout} s")
            future = client.call_async(request)
            wait_for(future.done, timeout, f"a response from {name}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self.context.try_shutdown()
        self._thread.join(5.0)
        self.executor.shutdown()
        self.node.destroy_node()
