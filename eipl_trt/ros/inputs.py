"""Latest-only input handoff between subscription callbacks and the model step (pure Python).

* :class:`LatestSlot` holds at most one item: a new item overwrites an unconsumed one (counted
  as dropped), so nothing queues up when a camera runs faster than the model.
* :class:`JointCache` keeps the latest position of every joint *by name*, across partial
  ``joint_states`` messages from several publishers, and assembles the model's joint vector.

Times are seconds on the node's clock (ROS time, so simulated time during bag replay).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar

import numpy as np

__all__ = ["Frame", "LatestSlot", "JointCache", "JointVector", "frame_wait_s"]

T = TypeVar("T")


@dataclass(frozen=True)
class Frame:
    """One decoded camera frame.

    Attributes:
        image: ``(H, W, C)`` uint8 view of the message bytes (row padding removed).
        encoding: layout of ``image`` (rgb8, bgr8, rgba8, bgra8, mono8; other encodings and compressed
            frames are converted to one of these on receipt, see :mod:`eipl_trt.camera`).
        stamp_s: header stamp (s); 0.0 when the driver left it unset.
        receipt_s: node time at receipt (s).
        header: the message header, copied to the outputs computed from this frame.
        decode_s: time spent turning the message into ``image`` (s): JPEG/PNG decoding, YUV/Bayer
            conversion; about zero for a raw rgb8/bgr8 frame (a view).
        decoder: set on a *deferred* frame (JPEG/PNG, YUV, Bayer, 16 bit): ``image`` is empty and
            ``decoder()`` returns the decoded frame (or raises ``InputError``). The subscription
            callback stores deferred frames, so a frame a newer one supersedes is never decoded;
            the step decodes the one it uses (:meth:`LatestSlot.replace` keeps the result).
    """

    image: np.ndarray
    encoding: str
    stamp_s: float
    receipt_s: float
    header: Any = None
    decode_s: float = 0.0
    decoder: Callable[[], "Frame"] | None = None


class LatestSlot(Generic[T]):
    """A depth-1, drop-oldest handoff. :meth:`take` consumes the item; :meth:`latest` keeps it."""

    def __init__(self) -> None:
        self._item: T | None = None
        self._fresh = False
        self._lock = threading.Lock()
        self.received = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; returns True if it overwrote one that was never taken (a dropped input)."""
        with self._lock:
            overwrote = self._fresh
            self._item = item
            self._fresh = True
            self.received += 1
            if overwrote:
                self.dropped += 1
            return overwrote

    def take(self) -> T | None:
        """The item if it was not taken before, else ``None``; marks it taken."""
        with self._lock:
            if not self._fresh:
                return None
            self._fresh = False
            return self._item

    def latest(self) -> T | None:
        """The most recent item, taken or not (``None`` before the first)."""
        with self._lock:
            return self._item

    def replace(self, old: T, new: T | None) -> None:
        """Put ``new`` in place of ``old`` if ``old`` is still the stored item (freshness unchanged).

        Used to keep a frame decoded on the step thread, or to forget one that failed to decode,
        without undoing a newer ``put`` that happened meanwhile.
        """
        with self._lock:
            if self._item is old:
                self._item = new

    def clear(self) -> None:
        """Forget the item (e.g. after a time jump); counters are kept."""
        with self._lock:
            self._item = None
            self._fresh = False


@dataclass(frozen=True)
class JointVector:
    """The model's joint input assembled from the cache.

    Attributes:
        positions: ``(D,)`` float64 positions (rad) in model order; NaN where missing.
        missing: model joints never received.
        oldest_receipt_s: receipt time of the least recently updated model joint (s), or ``None``
            when a joint is missing.
    """

    positions: np.ndarray
    missing: tuple[str, ...]
    oldest_receipt_s: float | None

    @property
    def complete(self) -> bool:
        """True when every model joint has a value."""
        return not self.missing


class JointCache:
    """Latest position per joint name.

    Args:
        joint_names: the model's joints in model order; other names in messages are ignored.
    """

    def __init__(self, joint_names: Sequence[str]):
        self.joint_names = tuple(joint_names)
        self._index = {name: i for i, name in enumerate(self.joint_names)}
        self._positions = np.full(len(self.joint_names), np.nan)
        self._receipt = np.full(len(self.joint_names), -np.inf)
        self._lock = threading.Lock()
        self.received = 0

    def update(self, names: Sequence[str], positions: Sequence[float], receipt_s: float) -> list[str]:
        """Merge one ``joint_states`` message; returns problems found (empty list = all good).

        Joints not in the model are ignored (a robot publishes more joints than a model uses).
        Problems are sentences: an empty message, ``name``/``position`` length mismatch or a name
        listed twice (the message is ignored: which of two positions is the joint's is unknowable),
        no model joint in the message, non-finite positions (those joints keep their previous value,
        so they go stale if it persists).
        """
        names = list(names)
        if not names:
            return ["joint_states message is empty (no names); ignored"]
        if len(positions) != len(names):
            return [
                f"joint_states message has {len(names)} names but {len(positions)} positions; "
                f"ignored (the publisher must fill position for every name)"
            ]
        if len(set(names)) != len(names):
            seen: set[str] = set()
            twice = sorted({n for n in names if n in seen or seen.add(n)})
            return [
                f"joint_states message names {', '.join(twice)} more than once; ignored (each joint must "
                f"appear once, with one position)"
            ]
        problems: list[str] = []
        bad: list[str] = []
        matched = 0
        with self._lock:
            self.received += 1
            for name, value in zip(names, positions):
                i = self._index.get(name)
                if i is None:
                    continue
                matched += 1
                v = float(value)
                if not math.isfinite(v):
                    bad.append(name)
                    continue
                self._positions[i] = v
                self._receipt[i] = receipt_s
        if matched == 0:
            problems.append(
                f"joint_states message has none of the model joints (got {', '.join(names[:8])}"
                f"{', ...' if len(names) > 8 else ''}; model joints: {', '.join(self.joint_names)}); "
                f"set the joint_names parameter to the robot's joint names in model order"
            )
        if bad:
            problems.append(f"joint_states has NaN/Inf position for {', '.join(bad)}; kept the previous value")
        return problems

    def vector(self) -> JointVector:
        """The model joint vector from the latest values."""
        with self._lock:
            positions = self._positions.copy()
            receipt = self._receipt.copy()
        missing = tuple(n for n, r in zip(self.joint_names, receipt) if not np.isfinite(r))
        oldest = None if missing else float(receipt.min())
        return JointVector(positions, missing, oldest)

    def clear(self) -> None:
        """Forget every joint (e.g. after a time jump)."""
        with self._lock:
            self._positions[:] = np.nan
            self._receipt[:] = -np.inf


def frame_wait_s(now_s: float, last_receipt_s: float | None, camera_rate_hz: float, max_wait_s: float,
                 fresh_s: float = 0.002) -> float:
    """How long a timer tick should wait for the camera frame that is due, before stepping (s).

    A control timer and a camera are two free-running clocks: at a tick the newest frame is
    anywhere between 0 and one camera period old, a delay the step adds to every command. When the
    next frame is due within ``max_wait_s`` (from the last receipt and the measured camera rate),
    waiting for it gives the step a frame ``fresh_s`` old instead. 0 when the newest frame is
    already fresh, the camera rate is unknown, or the camera is late by more than a period
    (stopped or dropping frames: step at once on what there is).

    Args:
        now_s: the tick's time (s, node clock).
        last_receipt_s: receipt time of the newest frame (s), ``None`` before the first.
        camera_rate_hz: the measured camera rate (0 = unknown).
        max_wait_s: the longest wait allowed (s); 0 disables waiting.
        fresh_s: a frame at most this old (s) counts as fresh.
    """
    if max_wait_s <= 0.0 or last_receipt_s is None or camera_rate_hz <= 0.0:
        return 0.0
    age = now_s - last_receipt_s
    period = 1.0 / camera_rate_hz
    if age <= fresh_s or age >= period + fresh_s:
        return 0.0
    due_in = period - age + fresh_s
    return due_in if due_in <= max_wait_s else 0.0
