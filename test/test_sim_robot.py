"""The simulated robot's ROS-free core: layouts, the position interface and its PD, the robot-side
limit check, scoring, the expert and hold-still baselines, the launch mapping and the report video."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from eipl_trt.errors import InputError

for _module in ("mujoco", "gymnasium"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(f"{_module} is not installed (the [sim] extra)", allow_module_level=True)

from eipl_trt.sim.baselines import run_expert, run_hold_still, run_replay  # noqa: E402
from eipl_trt.sim.launch_plan import SIM_ARGUMENTS, sim_launch_from_args  # noqa: E402
from eipl_trt.sim.pusher import JOINT_NAMES, PusherScene  # noqa: E402
from eipl_trt.sim.record import SUCCESS_RADIUS_M, record_episode  # noqa: E402
from eipl_trt.sim.robot import SUBSTEPS, CommandCheck, SimRobot  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FRAMES = 70  # the expert needs about 6.1 s


@pytest.fixture(scope="module")
def scene() -> Iterator[PusherScene]:
    with PusherScene(64) as s:
        yield s


def test_layouts_are_the_recorded_ones_and_the_baselines_bracket_the_task(scene: PusherScene) -> None:
    robot = SimRobot(scene, seed=0)
    recorded = record_episode(scene, robot.kin, (0, 3), FRAMES)  # episode 3 of the bundled training data
    setup = robot.start_episode(3)
    assert setup.layout == recorded.layout
    np.testing.assert_allclose(scene.joint_positions(), recorded.joint_positions[0])
    expert = run_expert(robot, 3, FRAMES)
    assert expert.final_distance_m == pytest.approx(recorded.final_error_m, abs=1e-9)  # the same expert, same timing
    assert expert.success and expert.final_distance_m <= SUCCESS_RADIUS_M and expert.min_hand_object_m < 0.02
    hold = run_hold_still(robot, 3, FRAMES)
    assert not hold.success and hold.object_moved_m < 1e-3
    assert hold.final_distance_m == pytest.approx(hold.start_distance_m, abs=1e-3)
    # The position interface is good enough: the expert's 10 Hz joints sent as commands solve it.
    replay = run_replay(robot, 3, FRAMES, recorded.joints.astype(np.float64))
    assert replay.success and replay.commands == FRAMES - 1


def test_target_holds_when_commands_stop(scene: PusherScene) -> None:
    robot = SimRobot(scene, seed=1)
    robot.start_episode(0)
    start = scene.joint_positions()
    target = start + np.array([0.2, 0.1, -0.1, -0.2, 0.1, -0.1, 0.1])
    assert robot.command_positions(target) == []
    for _ in range(2 * SUBSTEPS * 10):  # 2 s without another command
        robot.step_period()
    np.testing.assert_allclose(scene.joint_positions(), target, atol=0.02)
    before = scene.joint_positions()
    for _ in range(SUBSTEPS * 10):
        robot.step_period()
    np.testing.assert_allclose(scene.joint_positions(), before, atol=2e-3)  # nothing runs away
    assert robot.current_score().commands == 1


def test_trajectory_is_interpolated_by_joint_name(scene: PusherScene) -> None:
    robot = SimRobot(scene, seed=1)
    robot.start_episode(1)
    start = robot.target
    delta = np.array([0.2, 0.2, 0.2, -0.2, 0.2, -0.2, 0.2])  # elbow and wrist flex start at their 0 limit
    goal = start + delta
    names = list(reversed(JOINT_NAMES))
    assert robot.command_trajectory(names, [(0.1, list(reversed(goal)))]) == []
    q_ref, qd_ref = robot._reference(scene.time_s + 0.05)
    np.testing.assert_allclose(q_ref, start + delta / 2, atol=1e-9)
    np.testing.assert_allclose(qd_ref, delta / 0.1, atol=1e-9)  # 0.2 rad in 0.1 s
    for _ in range(SUBSTEPS * 10):
        robot.step_period()
    np.testing.assert_allclose(scene.joint_positions(), goal, atol=0.02)
    with pytest.raises(InputError, match="lacks joint"):
        robot.command_trajectory(names[:6], [(0.1, [0.0] * 6)])


def test_robot_side_check_flags_limits_and_steps() -> None:
    lower, upper = np.full(7, -1.0), np.full(7, 1.0)
    check = CommandCheck(lower, upper, max_step=0.1)
    zero = np.zeros(7)
    assert check.check(np.full(7, 0.1), None, zero) == []  # exactly max_step from the measured position
    far = np.full(7, 0.05)
    far[2] = 0.3
    problems = check.check(far, np.full(7, 0.1), zero)  # 0.2 from the last command, 0.3 from measured
    assert len(problems) == 1 and JOINT_NAMES[2] in problems[0] and "max_step" in problems[0]
    high = np.zeros(7)
    high[0] = 1.5
    assert any("outside" in p for p in check.check(high, np.full(7, 1.45), np.full(7, 1.45)))
    assert check.check(np.full(7, np.nan), None, zero)
    assert (check.checked, check.violations) == (4, 3)


def test_refused_commands_hold_the_target(scene: PusherScene) -> None:
    robot = SimRobot(scene, seed=1)
    robot.start_episode(0)
    target = robot.target
    assert robot.command_positions([np.nan] * 7)
    assert robot.command_positions([0.0] * 6)
    np.testing.assert_array_equal(robot.target, target)
    assert robot.current_score().limit_violations == 2 and robot.current_score().commands == 0


def test_launch_mapping() -> None:
    plan = sim_launch_from_args({"clock": "realtime", "episodes": "3", "precision": "int8", "model": ""},
                                limits=([-1.0] * 7, [1.0] * 7), extra_node_args=["input_mix:=0.5"])
    assert plan.node_parameters["model"] == "sarnn8rt"  # empty = the default: the bundled controller
    # a step per frame on the freshest frame, points anchored to its stamp (the node default) in both clocks
    assert plan.node_parameters["trigger"] == "image" and plan.node_parameters["use_sim_time"] is False
    node = plan.node_command(["eipl_trt_node"])
    assert node[:2] == ["eipl_trt_node", "--ros-args"]
    assert "precision:=int8" in node and "joint_lower_limits:=[-1.000000, -1.000000, -1.000000, -1.000000, " \
        "-1.000000, -1.000000, -1.000000]" in node and "input_mix:=0.5" in node
    assert node[-2:] == ["-r", "image_raw:=camera/image_raw"]
    robot = plan.robot_command()
    assert "clock:=realtime" in robot and "episodes:=3" in robot and not any(a.startswith("results:=") for a in robot)
    defaults = sim_launch_from_args({})  # the task as a robot runs it: real time, the trajectory interface
    assert defaults.robot_parameters["clock"] == "realtime" and defaults.node_parameters["use_sim_time"] is False
    assert defaults.node_parameters["command_interface"] == "joint_trajectory"
    lockstep = sim_launch_from_args({"clock": "lockstep"})
    assert lockstep.node_parameters["trigger"] == "image" and lockstep.node_parameters["use_sim_time"] is True
    assert "use_sim_time:=true" in lockstep.node_command()
    for bad, message in (({"clock": "fast"}, "clock"), ({"episodes": "x"}, "integer"), ({"frames": "1"}, ">= 2"),
                         ({"command_interface": "joint_state"}, "forward_position"), ({"colour": "red"}, "unknown")):
        with pytest.raises(InputError, match=message):
            sim_launch_from_args(bad)


def test_launch_file_declares_the_mapped_arguments() -> None:
    import ast

    text = (REPO / "launch" / "sim.launch.py").read_text()
    tree = ast.parse(text)
    assert "ros2 launch eipl_trt sim.launch.py" in (ast.get_docstring(tree) or "")
    descriptions = next(ast.literal_eval(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                        and getattr(n.targets[0], "id", "") == "_DESCRIPTIONS")
    assert set(descriptions) == set(SIM_ARGUMENTS)
    assert all(d[0].isupper() and d.endswith(".") and len(d.split()) >= 8 for d in descriptions.values())
    assert "DeclareLaunchArgument(name" in text and "sim_launch_from_args(values" in text


def test_report_video_draws_the_points(scene: PusherScene, tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    pytest.importorskip("rclpy")
    from PIL import Image

    from eipl_trt.sim.report import summarize, write_video

    robot = SimRobot(scene, seed=1)
    robot.start_episode(0)
    images = np.stack([scene.render() for _ in range(3)])
    stamps = np.array([10, 20, 30], np.int64)
    points = {20: (np.array([[32.0, 32.0]]), np.array([[10.0, 10.0]]))}
    gif, png = tmp_path / "v.gif", tmp_path / "f.png"
    assert write_video(str(gif), str(png), (images, stamps), points) == 1
    with Image.open(gif) as g:
        assert g.n_frames == 3 and g.size == (128, 128)
    frame = np.asarray(Image.open(png).convert("RGB"))
    assert tuple(frame[64, 64]) == (255, 40, 40)  # the encoder point, drawn at 2x
    summary = summarize([robot.finish_episode().to_json()])
    assert summary["success_rate"] == 0.0 and summary["episodes"] == 1
    json.dumps(summary)


def test_trajectory_points_count_from_the_header_stamp_and_ramp_from_where_the_arm_is() -> None:
    """ros2_controllers' rule: due at stamp + time_from_start, the ramp starting when the command is applied."""
    from eipl_trt.sim.pusher import JOINT_NAMES, PusherScene
    from eipl_trt.sim.robot import SimRobot

    with PusherScene(16) as scene:
        robot = SimRobot(scene, seed=1)
        robot.start_episode(0)
        q0 = robot.target
        goal = q0 - 0.05  # within the limits (the elbow and wrist flex stop at 0)
        for _ in range(2):  # the command lands 0.04 s after the frame it was computed from (stamp 0.0)
            robot.step_period()
        now = scene.time_s
        assert robot.command_trajectory(JOINT_NAMES, [(0.1, goal)], start_s=0.0) == []
        ref, vel = robot._reference(now)
        np.testing.assert_allclose(ref, q0, atol=1e-12)  # no jump: the ramp starts where the reference is
        np.testing.assert_allclose(vel, (goal - q0) / (0.1 - now), rtol=1e-9)  # and ends at the stamp + 0.1
        np.testing.assert_allclose(robot._reference(0.1)[0], goal, atol=1e-12)
        robot.command_trajectory(JOINT_NAMES, [(0.1, goal - 0.05)])  # no stamp: counted from now
        np.testing.assert_allclose(robot._reference(now + 0.1)[0], goal - 0.05, atol=1e-12)
        robot.command_trajectory(JOINT_NAMES, [(0.1, goal)], start_s=now - 0.5)  # already due: reached at once
        np.testing.assert_allclose(robot._reference(now)[0], goal, atol=1e-12)


def test_command_latency_holds_commands_until_due() -> None:
    from eipl_trt.sim.robot_loop import CommandQueue

    queue = CommandQueue(0.03)
    queue.add([("trajectory", "a", 1.00), ("forward", "b", 1.01)])
    assert queue.take_due(1.02) == []
    assert queue.take_due(1.03) == [("trajectory", "a")]
    assert queue.take_due(1.10) == [("forward", "b")] and queue.take_due(2.0) == []


def test_variations_are_drawn_per_episode_reproducibly_and_leave_the_nominal_robot_alone() -> None:
    from eipl_trt.errors import InputError
    from eipl_trt.sim.variation import NOMINAL, VariationConfig, draw

    config = VariationConfig((0.0, 0.04), 0.005, 0.1, (1, 2), 0.15)
    a, b = draw(config, 7, 3), draw(config, 7, 3)
    assert a.to_json() == b.to_json() and 0.0 <= a.latency_s <= 0.04 and a.joint_divisor in (1, 2)
    assert {draw(config, 7, i).latency_s for i in range(5)} != {a.latency_s}  # episodes differ
    delays = [a.frame_delay_s() for _ in range(400)]
    assert 20 < sum(d is None for d in delays) < 70  # ~10% dropped
    assert all(0.0 <= d <= 0.005 for d in delays if d is not None)
    nominal = draw(NOMINAL, 7, 3)
    assert nominal.latency_s == 0.0 and nominal.light == 1.0 and nominal.frame_delay_s() == 0.0
    assert nominal.object_rgb == (1.0, 1.0, 1.0) and nominal.goal_rgb == (1.0, 0.0, 0.0)
    with pytest.raises(InputError, match="latency range"):
        VariationConfig((0.05, 0.01))
    with pytest.raises(InputError, match="joint divisors"):
        VariationConfig(joint_divisors=(3,))


def test_the_pd_follows_a_ramp_the_same_whatever_the_rounding_of_its_end() -> None:
    """A trajectory ending exactly at a control-period boundary used to flip the PD's velocity target between
    the ramp's slope and zero on floating-point noise (lockstep and real time then moved the arm differently)."""
    from eipl_trt.sim.pusher import JOINT_NAMES, PusherScene
    from eipl_trt.sim.robot import SUBSTEPS, SimRobot

    finals = []
    with PusherScene(16) as scene:
        robot = SimRobot(scene, seed=1)
        for noise in (0.0, 3e-7, -3e-7):  # a stamp's rounding, as a wall clock gives it
            robot.start_episode(0)
            target = robot.target - 0.08
            for k in range(3):
                robot.command_trajectory(JOINT_NAMES, [(0.1, target - 0.05 * k)], start_s=0.1 * k + noise)
                for _ in range(SUBSTEPS):
                    robot.step_period()
            finals.append(scene.joint_positions())
    np.testing.assert_allclose(finals[1], finals[0], atol=1e-5)
    np.testing.assert_allclose(finals[2], finals[0], atol=1e-5)


def test_an_empty_parameter_is_passed_not_dropped() -> None:
    """reset_service '' turns the reset call off; dropped, the robot kept its default and waited 5 s per episode."""
    from eipl_trt.sim.processes import ros_command

    command = ros_command(["eipl_trt_sim_robot"], {"reset_service": "", "episodes": 3, "joint_divisors": [1, 2]})
    assert command == ["eipl_trt_sim_robot", "--ros-args", "-p", "reset_service:=''", "-p", "episodes:=3",
                       "-p", "joint_divisors:=[1, 2]"]


def test_report_diagnosis_says_what_the_means_show() -> None:
    from eipl_trt.sim.report import _diagnosis

    def entry(rate: float, moved: float) -> dict[str, float]:
        return {"success_rate": rate, "mean_object_moved_m": moved, "mean_min_hand_object_m": 0.3,
                "mean_final_distance_m": 0.07}

    assert _diagnosis(entry(1.0, 0.2)) == "solves every layout"
    assert _diagnosis(entry(0.85, 0.2)) == "solves most layouts"
    assert _diagnosis(entry(0.0, 0.01)).startswith("the object was hardly moved (mean 1.0 cm)")
    assert _diagnosis(entry(0.4, 0.15)) == "the object was moved (mean 15.0 cm) but not onto the goal (mean final distance 7.0 cm)"


def test_the_robot_waits_for_every_camera_subscriber_a_recording_needs() -> None:
    """A recording's robot waits for the expert, the model's node and the recorder before its first frame."""
    from eipl_trt.sim.collect import RecordConfig, _robot_params
    from eipl_trt.sim.ros_robot import SimRobotParams

    assert _robot_params(RecordConfig(out="x"), Path("r.json"))["image_subscribers"] == 2  # expert + recorder
    assert _robot_params(RecordConfig(out="x", model="sarnn8rt"), Path("r.json"))["image_subscribers"] == 3
    assert SimRobotParams().image_subscribers == 1  # alone: the controller
    with pytest.raises(InputError, match="image_subscribers must be >= 1"):
        SimRobotParams(image_subscribers=0)
