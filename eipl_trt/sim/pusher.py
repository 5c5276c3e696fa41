"""The MuJoCo Pusher scene used for demonstrations: physics, state access and offscreen rendering.

Scene (gymnasium ``Pusher-v5``): a 7-joint arm driven by torque motors (``ctrl`` in [-2, 2] N·m,
no gravity), a white cylinder (the object, radius 5 cm, on two horizontal slide joints) and a
red disc (the goal, radius 8 cm). The arm touches the world only with the U-shaped hand at its
wrist (a palm bar and two fingers, all in the ``r_wrist_roll_link`` frame).

Changes to the stock environment, each for a stated reason:

* ``frame_skip`` is 2, so one control period is 0.02 s (50 Hz): the expert's joint PD loop runs
  at 50 Hz and joint states can be published at 50 Hz; the camera runs at 10 Hz (every 5th period).
* The object's mass is raised from 8e-6 kg to :data:`OBJECT_MASS_KG`. MuJoCo scales contact
  softness by the bodies' inverse mass, so the stock featherweight object lets the hand pass
  through it (6 cm penetration at 0.03 N) instead of being pushed.
* Shadows and multisampling are off (``light_castshadow = 0``, ``offsamples = 0``): a 128 px
  frame then renders in about 3 ms on llvmpipe instead of 25-44 ms.
* A free camera (:data:`DEFAULT_CAMERA`) looks over the robot's shoulder at the work area, so the
  arm, the object and the goal are all visible, also after resizing to 64x64.

Rendering is offscreen. ``MUJOCO_GL`` is respected when set; otherwise EGL is used when libEGL is
installed, else OSMesa. mujoco and gymnasium (the ``[sim]`` extra) are imported when a
:class:`PusherScene` is created, not when this module is imported.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from eipl_trt.errors import BackendUnavailableError, InputError

__all__ = [
    "JOINT_NAMES",
    "PHYSICS_DT_S",
    "FRAME_SKIP",
    "CONTROL_PERIOD_S",
    "OBJECT_MASS_KG",
    "OBJECT_RADIUS_M",
    "GOAL_RADIUS_M",
    "CameraView",
    "DEFAULT_CAMERA",
    "Layout",
    "PusherScene",
    "import_mujoco",
]

logger = logging.getLogger(__name__)

#: The arm joints, in actuator and ``qpos`` order (rad).
JOINT_NAMES: tuple[str, ...] = (
    "r_shoulder_pan_joint",
    "r_shoulder_lift_joint",
    "r_upper_arm_roll_joint",
    "r_elbow_flex_joint",
    "r_forearm_roll_joint",
    "r_wrist_flex_joint",
    "r_wrist_roll_joint",
)
#: MuJoCo time step of Pusher-v5 (s).
PHYSICS_DT_S = 0.01
#: Physics steps per control period.
FRAME_SKIP = 2
#: Control period (s): 50 Hz.
CONTROL_PERIOD_S = PHYSICS_DT_S * FRAME_SKIP
#: Object mass used instead of the stock 7.85e-6 kg (kg); see the module docstring.
OBJECT_MASS_KG = 0.02
#: Object cylinder radius (m).
OBJECT_RADIUS_M = 0.05
#: Goal disc radius (m).
GOAL_RADIUS_M = 0.08
# Body origins of object and goal in Pusher's XML (m); their slide joints move them from there.
_OBJECT_ORIGIN = np.array([0.45, -0.05])
_GOAL_ORIGIN = np.array([0.45, -0.05])
# qpos addresses: arm 0..6, obj_slidey 7, obj_slidex 8, goal_slidey 9, goal_slidex 10.
_ARM = slice(0, 7)


@dataclass(frozen=True)
class CameraView:
    """A MuJoCo free camera.

    Attributes:
        lookat: point the camera looks at (m, world frame).
        distance: distance from ``lookat`` (m).
        elevation: pitch (deg); negative looks down.
        azimuth: heading (deg); 90 looks along +y, i.e. over the robot's shoulder.
    """

    lookat: tuple[float, float, float] = (0.5, -0.2, -0.3)
    distance: float = 1.35
    elevation: float = -60.0
    azimuth: float = 90.0


#: Camera of the demonstrations: over the shoulder, framing the table area the expert works in.
DEFAULT_CAMERA = CameraView()


@dataclass(frozen=True)
class Layout:
    """Where the object and the goal are at the start of an episode.

    Attributes:
        object_xy: object centre (m, world x/y).
        goal_xy: goal centre (m, world x/y).
    """

    object_xy: tuple[float, float]
    goal_xy: tuple[float, float]


def _default_gl_backend() -> str:
    """``egl`` when libEGL is installed, else ``osmesa`` (which needs libosmesa6)."""
    if ctypes.util.find_library("EGL"):
        return "egl"
    if ctypes.util.find_library("OSMesa"):
        return "osmesa"
    raise BackendUnavailableError(
        "no offscreen OpenGL library for MuJoCo rendering: install EGL "
        "(`apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri`) or OSMesa "
        "(`apt-get install libosmesa6`), or set MUJOCO_GL"
    )


def _loaded_gl_backend(mujoco: ModuleType) -> str | None:
    """The GL backend the imported mujoco renders with ("egl", "osmesa", "glfw", ...), None if unknown."""
    for name in ("mujoco.rendering.classic.gl_context", "mujoco.gl_context"):
        module = sys.modules.get(name)
        if module is not None:
            return str(getattr(getattr(module, "GLContext", None), "__module__", "")).rpartition(".")[2] or None
    return None


def import_mujoco() -> ModuleType:
    """Import mujoco for offscreen rendering (chooses ``MUJOCO_GL`` first if it is unset).

    Returns:
        The ``mujoco`` module.

    Raises:
        BackendUnavailableError: mujoco is not installed, its GL backend cannot load, or mujoco
            was already imported with a different backend than ``MUJOCO_GL`` names.
    """
    logging.getLogger("OpenGL.acceleratesupport").setLevel(logging.WARNING)  # "no OpenGL_accelerate" noise
    if "MUJOCO_GL" not in os.environ:
        os.environ["MUJOCO_GL"] = _default_gl_backend()
    wanted = os.environ["MUJOCO_GL"].strip().lower() or "glfw"
    try:
        import mujoco
    except ImportError as exc:
        raise BackendUnavailableError(
            f"mujoco is not installed ({exc}); install the simulation extra: "
            f"pip install 'mujoco>=3.2' 'gymnasium[mujoco]>=1.0'"
        ) from exc
    except (AttributeError, OSError, RuntimeError) as exc:
        raise BackendUnavailableError(
            f"mujoco could not load its OpenGL backend MUJOCO_GL={wanted} ({exc}); "
            f"try MUJOCO_GL=egl or MUJOCO_GL=osmesa (apt-get install libosmesa6)"
        ) from exc
    loaded = _loaded_gl_backend(mujoco)
    if loaded is not None and loaded != wanted:
        raise BackendUnavailableError(
            f"mujoco was imported with the {loaded} GL backend before eipl_trt.sim could choose "
            f"MUJOCO_GL={wanted} for offscreen rendering; set MUJOCO_GL=egl (or osmesa) in the "
            f"environment, or import eipl_trt.sim.pusher before mujoco"
        )
    return mujoco


def _make_env() -> Any:
    """``gymnasium.make('Pusher-v5', frame_skip=FRAME_SKIP)`` with install hints on failure."""
    import_mujoco()
    try:
        import gymnasium as gym
    except ImportError as exc:
        raise BackendUnavailableError(
            f"gymnasium is not installed ({exc}); pip install 'gymnasium[mujoco]>=1.0'"
        ) from exc
    try:
        return gym.make("Pusher-v5", frame_skip=FRAME_SKIP)
    except (ImportError, gym.error.Error) as exc:
        raise BackendUnavailableError(
            f"cannot create gymnasium Pusher-v5 ({exc}); pip install 'gymnasium[mujoco]>=1.0'"
        ) from exc


class PusherScene:
    """Pusher-v5 physics plus a fixed offscreen camera.

    Args:
        image_size: side of the square camera image (px).
        camera: the free camera to render from.

    Attributes:
        mujoco: the imported ``mujoco`` module (for callers that need its functions).
        model, data: the environment's ``MjModel`` and ``MjData`` (the live simulation state).
        joint_range: (7, 2) arm joint limits (rad).
        ctrl_range: (7, 2) motor torque limits (N·m).

    Raises:
        InputError: ``image_size`` outside 16..1024.
        BackendUnavailableError: mujoco, gymnasium or offscreen GL is unavailable.
    """

    def __init__(self, image_size: int = 128, camera: CameraView = DEFAULT_CAMERA) -> None:
        if not 16 <= int(image_size) <= 1024:
            raise InputError(f"image size must be 16..1024 px, got {image_size}")
        self.image_size = int(image_size)
        self.mujoco: ModuleType = import_mujoco()
        self._env = _make_env()
        env = self._env.unwrapped
        self._env.reset(seed=0)
        self.model = env.model
        self.data = env.data
        self._sim = env
        self.model.body_mass[self.model.body("object").id] = OBJECT_MASS_KG
        self.mujoco.mj_setConst(self.model, self.data)
        self.model.light_castshadow[:] = 0
        self.model.vis.quality.offsamples = 0
        self._camera = self.mujoco.MjvCamera()
        self._camera.type = self.mujoco.mjtCamera.mjCAMERA_FREE
        self._camera.lookat[:] = camera.lookat
        self._camera.distance = camera.distance
        self._camera.elevation = camera.elevation
        self._camera.azimuth = camera.azimuth
        try:
            self._renderer = self.mujoco.Renderer(self.model, self.image_size, self.image_size)
        except Exception as exc:  # GL context errors come as various types
            self._env.close()
            raise BackendUnavailableError(
                f"cannot create an offscreen renderer with MUJOCO_GL={os.environ.get('MUJOCO_GL')} "
                f"({exc}); try MUJOCO_GL=osmesa after `apt-get install libosmesa6`"
            ) from exc
        self.joint_range = np.array(self.model.jnt_range[_ARM], dtype=np.float64)
        self.ctrl_range = np.array(self.model.actuator_ctrlrange, dtype=np.float64)

    def reset(self, layout: Layout, arm_qpos: np.ndarray | None = None) -> None:
        """Start an episode: time 0, arm at rest in ``arm_qpos`` (rad, default 0), object/goal placed.

        Args:
            layout: object and goal positions.
            arm_qpos: (7,) initial joint positions (rad); clipped to the joint limits.
        """
        self.mujoco.mj_resetData(self.model, self.data)
        qpos = np.zeros(self.model.nq)
        if arm_qpos is not None:
            qpos[_ARM] = np.clip(arm_qpos, self.joint_range[:, 0], self.joint_range[:, 1])
        obj = np.asarray(layout.object_xy, dtype=np.float64) - _OBJECT_ORIGIN
        goal = np.asarray(layout.goal_xy, dtype=np.float64) - _GOAL_ORIGIN
        qpos[7:11] = (obj[1], obj[0], goal[1], goal[0])
        self._sim.set_state(qpos, np.zeros(self.model.nv))

    def step(self, ctrl: np.ndarray) -> None:
        """Apply joint torques ``ctrl`` (7,) N·m, clipped to ±2, for one control period (0.02 s)."""
        torque = np.clip(ctrl, self.ctrl_range[:, 0], self.ctrl_range[:, 1])
        self._sim.do_simulation(torque, FRAME_SKIP)

    @property
    def time_s(self) -> float:
        """Simulation time since :meth:`reset` (s)."""
        return float(self.data.time)

    def joint_positions(self) -> np.ndarray:
        """(7,) arm joint positions (rad), a copy."""
        return np.array(self.data.qpos[_ARM], dtype=np.float64)

    def joint_velocities(self) -> np.ndarray:
        """(7,) arm joint velocities (rad/s), a copy."""
        return np.array(self.data.qvel[_ARM], dtype=np.float64)

    def joint_efforts(self) -> np.ndarray:
        """(7,) torques applied during the last control period (N·m), a copy."""
        return np.array(self.data.ctrl, dtype=np.float64)

    def object_xy(self) -> np.ndarray:
        """(2,) object centre (m, world x/y)."""
        return np.array(self.data.body("object").xpos[:2], dtype=np.float64)

    def goal_xy(self) -> np.ndarray:
        """(2,) goal centre (m, world x/y)."""
        return np.array(self.data.body("goal").xpos[:2], dtype=np.float64)

    def render(self) -> np.ndarray:
        """Render the camera: (H, W, 3) uint8 RGB, a fresh array."""
        self._renderer.update_scene(self.data, camera=self._camera)
        return np.array(self._renderer.render(), dtype=np.uint8, copy=True)

    def close(self) -> None:
        """Release the renderer's GL context and the environment."""
        renderer, self._renderer = getattr(self, "_renderer", None), None
        if renderer is not None:
            renderer.close()
        env, self._env = getattr(self, "_env", None), None
        if env is not None:
            env.close()

    def __enter__(self) -> PusherScene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
