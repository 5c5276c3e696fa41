"""Progress: a bar on a terminal, plain periodic lines in a log (eipl_trt.common.progress)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eipl_trt.common.progress import ENV_VAR, Progress, choose_mode

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_forced_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_log_gets_a_line_every_interval_and_a_final_one() -> None:
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(100, "evaluate", "step", stream=out, interval_s=5.0, clock=clock)
    assert bar.mode == "lines"
    for _ in range(32):  # 32 updates within 4 s: no line yet
        clock.now += 0.125
        bar.update()
    assert out.getvalue() == ""
    clock.now += 1.0  # 5 s since the start
    bar.update(18)
    bar.set_postfix({"loss": "0.5"})
    for _ in range(50):
        clock.now += 0.01
        bar.update()
    bar.close()
    bar.close()  # idempotent
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "evaluate: 50/100 step (50%), 10.0 step/s, ~5 s left"
    assert lines[1] == "evaluate: done, 100 step in 5.5 s; loss=0.5"
    assert len(lines) == 2


def test_unknown_total_and_early_stop_are_reported() -> None:
    out, clock = io.StringIO(), FakeClock()
    with Progress(None, "replaying", "frame", stream=out, interval_s=1.0, clock=clock) as bar:
        clock.now += 2.0
        bar.update(4)
    assert out.getvalue().splitlines() == ["replaying: 4 frame, 2.0 frame/s", "replaying: done, 4 frame in 2.0 s"]
    out = io.StringIO()
    with Progress(10, "sarnn", "epoch", stream=out, clock=clock) as bar:
        bar.update(3)
    assert out.getvalue() == "sarnn: done, 3/10 epoch in 0.0 s\n"


def test_terminal_gets_a_tqdm_bar() -> None:
    pytest.importorskip("tqdm")
    term = Terminal()
    assert choose_mode(term) == "bar"
    with Progress(3, "episodes", "ep", stream=term) as bar:
        for _ in range(3):
            bar.update()
        bar.set_postfix({"err": "1.0 cm"})
    text = term.getvalue()
    assert "\r" in text and "episodes" in text and "3/3" in text and "err=1.0 cm" in text


def test_mode_choice_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_mode(io.StringIO()) == "lines"
    assert choose_mode(Terminal(), enabled=False) == "off"
    out = io.StringIO()
    with Progress(5, "x", stream=out, enabled=False) as bar:
        bar.update(5)
    assert out.getvalue() == ""
    monkeypatch.setenv(ENV_VAR, "lines")
    assert choose_mode(Terminal()) == "lines"
    monkeypatch.setenv(ENV_VAR, "off")
    assert choose_mode(io.StringIO()) == "off"
    monkeypatch.setenv(ENV_VAR, "fancy")
    with pytest.raises(ValueError, match="bar, lines, off"):
        choose_mode(io.StringIO())


def test_evaluate_logs_lines_not_carriage_returns(tmp_path: Path) -> None:
    """`eipl-trt evaluate` with its output in a file, as in CI: readable lines only."""
    pytest.importorskip("rosbags")
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    log = tmp_path / "log.txt"
    with open(log, "w") as handle:
        subprocess.run([sys.executable, "-m", "eipl_trt.cli", "evaluate", "--bag", str(ROOT / "data" / "pusher_sample"),
                        "--out", str(tmp_path / "eval")], stdout=handle, stderr=subprocess.STDOUT, env=env,
                       cwd=ROOT, check=True, timeout=300)
    text = log.read_text()
    assert "\r" not in text
    assert any(line.startswith("evaluate: done, ") for line in text.splitlines()), text
