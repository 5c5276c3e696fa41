"""``eipl-trt control``'s outputs: ``report.json``, ``report.md`` and a video per precision.

Every run (a precision, ``expert``, ``hold_still``) gets ``success_rate``, the mean final
object-to-goal distance and its per-episode results; the model runs add the node's step latency
(``~/timing`` ``step_ms``: p50/p99/max), its safety events (from its last ``/diagnostics``
report: commands sent, clamped, rate-limited, stale stops) and the robot-side
``limit_violations``. The video is the first episode's camera frames with the node's attention
points drawn (encoder points as filled discs, decoder predictions as rings), as a GIF, plus its
middle frame as a PNG. Every file is written atomically.
"""

from __future__ import annotations

import io
import os
import shlex
import sys
from typing import Any

import numpy as np

from eipl_trt.common.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic

__all__ = ["summarize", "write_report", "write_video"]


def summarize(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """success_rate and mean distances (m) over per-episode results."""
    def mean(key: str) -> float:
        return float(np.mean([e[key] for e in episodes])) if episodes else float("nan")

    return {
        "episodes": len(episodes),
        "successes": int(sum(bool(e["success"]) for e in episodes)),
        "success_rate": float(np.mean([bool(e["success"]) for e in episodes])) if episodes else float("nan"),
        "mean_final_distance_m": mean("final_distance_m"),
        "mean_start_distance_m": mean("start_distance_m"),
        "mean_object_moved_m": mean("object_moved_m"),
        "mean_min_hand_object_m": mean("min_hand_object_m"),
        "per_episode": episodes,
    }


def _int(diag: dict[str, dict[str, str]], status: str, key: str) -> int | None:
    try:
        return int(diag[status][key])
    except (KeyError, ValueError):
        return None


def _latency(step_ms: list[float]) -> dict[str, float | int]:
    values = np.asarray([v for v in step_ms if np.isfinite(v)], np.float64)
    if values.size == 0:
        return {"n": 0}
    return {"n": int(values.size), "p50_ms": float(np.percentile(values, 50)),
            "p99_ms": float(np.percentile(values, 99)), "max_ms": float(values.max())}


def write_video(path_gif: str, path_png: str, frames: tuple[np.ndarray, np.ndarray],
                points: dict[int, Any], scale: int = 2) -> int:
    """Draw the attention points on ``frames`` (images, stamps ns) and write a 10 fps GIF and its middle frame.

    Returns:
        The number of frames that had attention points.
    """
    from PIL import Image

    from eipl_trt.ros.convert import draw_points

    images, stamps = frames
    drawn: list[Any] = []
    with_points = 0
    for image, stamp in zip(images, stamps):
        enc, dec = points.get(int(stamp), (None, None))
        with_points += int(enc is not None)
        rgb = draw_points(image, enc, dec) if enc is not None or dec is not None else image
        pil = Image.fromarray(rgb)
        drawn.append(pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST))
    buf = io.BytesIO()
    drawn[0].save(buf, format="GIF", save_all=True, append_images=drawn[1:], duration=100, loop=0)
    write_bytes_atomic(path_gif, buf.getvalue())
    buf = io.BytesIO()
    drawn[len(drawn) // 2].save(buf, format="PNG")
    write_bytes_atomic(path_png, buf.getvalue())
    return with_points


def _model_run(name: str, run: dict[str, Any], out: str) -> dict[str, Any]:
    robot, diag = run["robot"], run["diagnostics"]
    entry = summarize(robot["episodes"])
    entry["step_latency"] = _latency(run["step_ms"])
    entry["safety"] = {
        "commands_sent": _int(diag, "commands", "commands"),
        "clamped": _int(diag, "commands", "clamped"),
        "rate_limited": _int(diag, "commands", "rate_limited"),
        "stale_stops": _int(diag, "inputs", "stale_skips"),
        "suppressed": _int(diag, "commands", "suppressed"),
        "missed_deadlines": _int(diag, "inference", "missed_deadlines"),
    }
    entry["limit_violations"] = int(robot["limit_check"]["violations"])
    entry["commands_checked"] = int(robot["limit_check"]["checked"])
    entry["limit_violation_examples"] = robot["limit_check"]["first_messages"][:5]
    entry["frames_without_command"] = int(sum(e["frames_without_command"] for e in robot["episodes"]))
    entry["node_exit_code"] = run["node_exit_code"]
    entry["logs"] = run["logs"]
    if run["frames"] is not None and len(run["frames"][0]):
        gif, png = os.path.join(out, f"video_{name}.gif"), os.path.join(out, f"frame_{name}.png")
        entry["video"] = {"gif": gif, "png": png, "episode": robot["episodes"][0]["index"],
                          "frames_with_points": write_video(gif, png, run["frames"], run["points"])}
    return entry


def _diagnosis(entry: dict[str, Any]) -> str:
    """One sentence on what happened in a run, from its means."""
    if entry["success_rate"] >= 1.0:
        return "solves every layout"
    if entry["success_rate"] >= 0.8:
        return "solves most layouts"
    if entry["mean_object_moved_m"] < 0.02:
        return (f"the object was hardly moved (mean {entry['mean_object_moved_m'] * 100:.1f} cm); the hand came "
                f"within {entry['mean_min_hand_object_m'] * 100:.1f} cm of the object centre on average")
    return (f"the object was moved (mean {entry['mean_object_moved_m'] * 100:.1f} cm) but not onto the goal "
            f"(mean final distance {entry['mean_final_distance_m'] * 100:.1f} cm)")


def _markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [f"# eipl-trt control: {cfg['model']}, {cfg['clock']} clock", "",
             f"`{report['command']}`", "",
             f"{cfg['episodes']} episodes per run, layouts {cfg['first_episode']}..{cfg['first_episode'] + cfg['episodes'] - 1} "
             f"of seed {cfg['seed']} ({'the bundled models trained on seed 0' if cfg['seed'] != 0 else 'seed 0: the bundled models trained on these'}), "
             f"{cfg['frames']} frames (0.1 s) each; success = object centre within "
             f"{report['success_radius_m'] * 100:.0f} cm of the goal centre at the end. Load average at the end: "
             f"{report['load_average']}; wall time {report['wall_s']:.0f} s.", "",
             "| run | success | mean final distance | mean start distance | object moved | closest hand-object "
             "| step p50 / p99 (ms) | commands | clamped | rate-limited | stale stops | limit violations |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, e in report["runs"].items():
        lat, saf = e.get("step_latency"), e.get("safety", {})
        lat_s = f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f}" if lat and lat.get("n") else "-"
        lines.append(
            f"| {name} | {e['successes']}/{e['episodes']} ({e['success_rate'] * 100:.0f}%) | "
            f"{e['mean_final_distance_m'] * 100:.1f} cm | {e['mean_start_distance_m'] * 100:.1f} cm | "
            f"{e['mean_object_moved_m'] * 100:.1f} cm | {e['mean_min_hand_object_m'] * 100:.1f} cm | {lat_s} | "
            + " | ".join(str(saf.get(k, "-")) if saf.get(k) is not None else "-"
                         for k in ("commands_sent", "clamped", "rate_limited", "stale_stops"))
            + f" | {e.get('limit_violations', '-')} |")
    lines += ["", "expert_ros: the scripted expert commanding the arm over ROS 2 like the node (joint targets at the "
              "camera rate, the same interface and clock); expert: the scripted expert in-process (torque control "
              "at the physics rate, the true state): what the layouts allow.", "", "## What happened", ""]
    for name, e in report["runs"].items():
        video = e.get("video")
        lines.append(f"- **{name}**: {_diagnosis(e)}" + (f"; video: `{video['gif']}`" if video else ""))
    lines += ["", "## Per episode (final distance, cm; * = success)", "",
              "| episode | " + " | ".join(report["runs"]) + " |", "|---|" + "---|" * len(report["runs"])]
    for k in range(cfg["episodes"]):
        cells = []
        for e in report["runs"].values():
            ep = e["per_episode"][k] if k < len(e["per_episode"]) else None
            cells.append("-" if ep is None else f"{ep['final_distance_m'] * 100:.1f}{'*' if ep['success'] else ''}")
        lines.append(f"| {cfg['first_episode'] + k} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(cfg: Any, runs: dict[str, Any], baselines: dict[str, list[dict[str, Any]]],
                 limits: tuple[list[float], list[float]], wall_s: float) -> dict[str, Any]:
    """Write ``report.json``, ``report.md`` and the videos under ``cfg.out``; returns the report."""
    from dataclasses import asdict

    from eipl_trt.sim.record import SUCCESS_RADIUS_M

    entries: dict[str, Any] = {name: _model_run(name, run, cfg.out) for name, run in runs.items()}
    for name, episodes in baselines.items():
        if isinstance(episodes, dict):  # a run over ROS (the robot's results): its checks too
            entries[name] = {**summarize(episodes["episodes"]),
                             "limit_violations": int(episodes["limit_check"]["violations"]),
                             "frames_without_command": int(sum(e["frames_without_command"] for e in episodes["episodes"]))}
        else:
            entries[name] = summarize(episodes)
    try:
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "n/a"
    report = {"config": asdict(cfg), "command": shlex.join(["eipl-trt", *sys.argv[1:]]),
              "success_radius_m": SUCCESS_RADIUS_M, "node_joint_limits": {"lower": limits[0], "upper": limits[1]},
              "runs": entries, "load_average": load, "wall_s": round(wall_s, 1)}
    write_json_atomic(os.path.join(cfg.out, "report.json"), report)
    write_text_atomic(os.path.join(cfg.out, "report.md"), _markdown(report))
    return report
