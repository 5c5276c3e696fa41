"""What differs between robots and runs, drawn per episode: command latency, camera timing, joint rate, looks.

A model trained on one perfectly timed simulator meets, on a real robot, a controller that applies its
commands tens of milliseconds late, a camera whose frames come with jitter and now and then not at all,
``joint_states`` at another rate, and other light. ``eipl-trt sim record`` draws these per episode
(domain randomization, Tobin et al. 2017) so the demonstrations hold them; ``eipl-trt control`` runs
with none of them unless asked, so scores stay comparable.

:class:`VariationConfig` holds the ranges (robot parameters of ``eipl_trt_sim_robot``);
:func:`draw` turns them into one episode's :class:`Variation` from a generator seeded by the episode,
so a recording is reproducible and the layout draws are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from eipl_trt.errors import InputError

__all__ = ["VariationConfig", "Variation", "draw", "apply_appearance", "NOMINAL"]

#: Geoms whose colour varies: the table, the object, the goal (Pusher-v5 geom ids).
_TABLE, _OBJECT, _GOAL = 0, 18, 19


@dataclass(frozen=True)
class VariationConfig:
    """Ranges drawn per episode (all zero: the nominal robot).

    Attributes:
        latency_s: (min, max) extra delay before the robot applies a received command (s).
        camera_jitter_s: frames are published up to this long after their capture stamp (s).
        frame_drop: probability that a frame is not published.
        joint_divisors: joint_states go out every k-th 20 ms control period, k drawn from these
            (1 = 50 Hz, 2 = 25 Hz).
        appearance: relative strength of light and colour changes (0.15 = +-15% light, small tints).
    """

    latency_s: tuple[float, float] = (0.0, 0.0)
    camera_jitter_s: float = 0.0
    frame_drop: float = 0.0
    joint_divisors: tuple[int, ...] = (1,)
    appearance: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = self.latency_s
        if not 0.0 <= lo <= hi <= 0.5:
            raise InputError(f"latency range must satisfy 0 <= min <= max <= 0.5 s, got {list(self.latency_s)}")
        if not 0.0 <= self.camera_jitter_s <= 0.05:
            raise InputError(f"camera jitter must be 0..0.05 s, got {self.camera_jitter_s}")
        if not 0.0 <= self.frame_drop < 0.5:
            raise InputError(f"frame drop probability must be 0..0.5, got {self.frame_drop}")
        if not self.joint_divisors or any(int(k) not in (1, 2, 5) for k in self.joint_divisors):
            raise InputError(f"joint divisors must be drawn from 1, 2, 5 (50, 25, 10 Hz), got {list(self.joint_divisors)}")
        if not 0.0 <= self.appearance <= 0.5:
            raise InputError(f"appearance strength must be 0..0.5, got {self.appearance}")

    @classmethod
    def from_params(cls, latency_s: Sequence[float], camera_jitter_s: float, frame_drop: float,
                    joint_divisors: Sequence[int], appearance: float) -> "VariationConfig":
        """From the robot's parameters (lists as ROS gives them)."""
        lat = [float(v) for v in latency_s]
        if len(lat) != 2:
            raise InputError(f"command_latency_s must be [min, max] (s), got {lat}")
        return cls((lat[0], lat[1]), float(camera_jitter_s), float(frame_drop),
                   tuple(int(k) for k in joint_divisors), float(appearance))


@dataclass(frozen=True)
class Variation:
    """One episode's draw (see :class:`VariationConfig`); ``rng`` draws the per-frame jitter and drops."""

    latency_s: float
    camera_jitter_s: float
    frame_drop: float
    joint_divisor: int
    light: float
    table_rgb: tuple[float, float, float]
    object_rgb: tuple[float, float, float]
    goal_rgb: tuple[float, float, float]
    rng: Any

    def frame_delay_s(self) -> float | None:
        """How long after capture this frame is published (s), or ``None`` when it is dropped."""
        if self.frame_drop > 0.0 and self.rng.random() < self.frame_drop:
            return None
        return float(self.rng.uniform(0.0, self.camera_jitter_s)) if self.camera_jitter_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"latency_s": round(self.latency_s, 4), "camera_jitter_s": self.camera_jitter_s,
                "frame_drop": self.frame_drop, "joint_rate_hz": 50.0 / self.joint_divisor, "light": round(self.light, 3)}


NOMINAL_COLOURS = {"table": (0.5, 0.5, 0.5), "object": (1.0, 1.0, 1.0), "goal": (1.0, 0.0, 0.0)}


def draw(config: VariationConfig, seed: int, index: int) -> Variation:
    """Episode ``index`` of layout ``seed``'s variation (its own generator: the layout draws are unaffected)."""
    rng = np.random.default_rng((int(seed), int(index), 0x5EED))
    a = config.appearance

    def tint(rgb: tuple[float, float, float], spread: float) -> tuple[float, float, float]:
        return tuple(float(np.clip(c + rng.uniform(-spread, spread), 0.0, 1.0)) for c in rgb)  # type: ignore[return-value]

    return Variation(
        latency_s=float(rng.uniform(*config.latency_s)),
        camera_jitter_s=config.camera_jitter_s,
        frame_drop=config.frame_drop,
        joint_divisor=int(rng.choice(config.joint_divisors)),
        light=float(rng.uniform(1.0 - a, 1.0 + a)),
        table_rgb=tint(NOMINAL_COLOURS["table"], a / 2),
        object_rgb=tint(NOMINAL_COLOURS["object"], a / 2),
        goal_rgb=tint(NOMINAL_COLOURS["goal"], a / 2),
        rng=rng,
    )


NOMINAL = VariationConfig()


def apply_appearance(scene: Any, variation: Variation) -> None:
    """Set the scene's light and the table/object/goal colours (nominal values scaled; call per episode)."""
    model = scene.model
    if not hasattr(scene, "_nominal_light"):
        scene._nominal_light = (model.light_diffuse.copy(), model.vis.headlight.diffuse.copy())
    light, head = scene._nominal_light
    model.light_diffuse[:] = np.clip(light * variation.light, 0.0, 1.0)
    model.vis.headlight.diffuse[:] = np.clip(head * variation.light, 0.0, 1.0)
    for geom, rgb in ((_TABLE, variation.table_rgb), (_OBJECT, variation.object_rgb), (_GOAL, variation.goal_rgb)):
        model.geom_rgba[geom, :3] = rgb
