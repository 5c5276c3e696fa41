"""Validation of runtime parameter changes (pure Python; the node's on-set-parameters callback uses it).

rclpy calls the callback before it stores the values and refuses the whole change when the
callback does; the reason it returns is shown to the caller (``ros2 param set``, rqt_reconfigure).
"""

from __future__ import annotations

from typing import Any, Mapping

from eipl_trt.errors import InputError
from eipl_trt.ros.params import DYNAMIC, NodeConfig
from eipl_trt.ros.runtime import NodeRuntime
from eipl_trt.runners import available_precisions

__all__ = ["validate_change"]


def validate_change(current: NodeConfig, changes: Mapping[str, Any], runtime: NodeRuntime | None) -> NodeConfig:
    """The config after ``changes`` (only runtime-changeable names are applied; others are ignored).

    With a loaded model, a precision must be available for it on the backend in use, and joint
    limits must fit its joints.

    Raises:
        InputError: the change is refused; the message is the reason to report.
    """
    ours = {name: value for name, value in changes.items() if name in DYNAMIC}
    new_cfg = current.replace(ours)
    if runtime is None:
        return new_cfg
    if "precision" in ours:
        have = available_precisions(runtime.spec, current.backend)
        if new_cfg.precision not in have:
            raise InputError(
                f"precision {new_cfg.precision} is not available for model {runtime.spec.model!r} on backend "
                f"{current.backend} (available: {', '.join(have) or 'none'}); nothing changed. Create the "
                f"variant with `eipl-trt quantize`."
            )
    new_cfg.safety_config(runtime.spec, runtime.joint_names)
    return new_cfg
