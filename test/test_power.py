"""Power/energy measurement: the INA3221 sysfs reader on a fake hwmon tree, the source factory here.

The INA3221 tests run the real file reader against a directory tree laid out like a Jetson's
sysfs (written into tmp_path and updated during the test), with an injected clock, so energy
integration is checked exactly and without sleeping. NVML and jtop cannot run on this machine;
their failure paths run against the real libraries when installed (and against their absence
via sys.modules), and their arithmetic against small stand-in modules named as such below.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from eipl_trt.errors import BackendUnavailableError, EipltrtError, InputError
from eipl_trt.power import (
    PowerSample,
    StepEnergyMeter,
    discover_ina3221_rails,
    energy_per_step_j,
    measure_idle_power_w,
    open_power_monitor,
    probe_power_monitor,
)
from eipl_trt.power.ina3221 import Ina3221Monitor


class FakeClock:
    """A monotonic clock the test advances by hand, s."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _write(path: Path, text: str) -> None:
    """Replace a sysfs-like file in one rename, so a concurrent reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def set_rail(hwmon: Path, channel: int, millivolts: int, milliamps: int) -> None:
    _write(hwmon / f"in{channel}_input", str(millivolts))
    _write(hwmon / f"curr{channel}_input", str(milliamps))


def make_ina3221_chip(
    sysfs: Path, device: str, labels: dict[int, str], *, update_interval_ms: int | None = 7
) -> Path:
    """One INA3221 as the kernel driver lays it out: devices/<dev>/hwmon/hwmonN, linked from drivers/."""
    hwmon = sysfs / "bus/i2c/devices" / device / "hwmon" / f"hwmon{len(device)}"
    hwmon.mkdir(parents=True)
    _write(hwmon / "name", "ina3221")
    for channel, label in labels.items():
        _write(hwmon / f"in{channel}_label", label)
        _write(hwmon / f"in{channel}_enable", "1")
        set_rail(hwmon, channel, 5000, 100 * channel)
    # The sum channel: a label and a shunt-voltage input, no current.
    _write(hwmon / "in7_label", "sum of shunt voltages")
    _write(hwmon / "in7_input", "12")
    if update_interval_ms is not None:
        _write(hwmon / "update_interval", str(update_interval_ms))
    drivers = sysfs / "bus/i2c/drivers/ina3221"
    drivers.mkdir(parents=True, exist_ok=True)
    (drivers / device).symlink_to(hwmon.parent.parent)
    return hwmon


@pytest.fixture
def orin_nano_sysfs(tmp_path: Path) -> tuple[Path, Path]:
    """A fake /sys with one INA3221 labelled like an Orin Nano (VDD_IN is the module total)."""
    sysfs = tmp_path / "orin_nano" / "sys"
    hwmon = make_ina3221_chip(sysfs, "1-0040", {1: "VDD_IN", 2: "VDD_CPU_GPU_CV", 3: "VDD_SOC"})
    set_rail(hwmon, 1, 5000, 1200)  # 6.0 W
    set_rail(hwmon, 2, 5000, 400)  # 2.0 W
    set_rail(hwmon, 3, 5000, 300)  # 1.5 W
    return sysfs, hwmon


@pytest.fixture
def agx_orin_sysfs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A fake /sys like an AGX Orin: two chips, no total rail, NC and disabled channels."""
    sysfs = tmp_path / "agx_orin" / "sys"
    first = make_ina3221_chip(sysfs, "1-0040", {1: "VDD_GPU_SOC", 2: "VDD_CPU_CV", 3: "VIN_SYS_5V0"})
    second = make_ina3221_chip(sysfs, "1-0041", {1: "VDDQ_VDD2_1V8AO", 2: "NC", 3: "VDD_SPARE"})
    _write(second / "in3_enable", "0")
    set_rail(first, 1, 5000, 1000)  # 5.0 W
    set_rail(first, 2, 5000, 600)  # 3.0 W
    set_rail(first, 3, 5000, 800)  # 4.0 W
    set_rail(second, 1, 1800, 500)  # 0.9 W
    return sysfs, first, second


def test_rails_are_discovered_by_label(
    orin_nano_sysfs: tuple[Path, Path], agx_orin_sysfs: tuple[Path, Path, Path]
) -> None:
    sysfs, hwmon = orin_nano_sysfs
    rails = discover_ina3221_rails(sysfs)
    assert [(r.name, r.channel) for r in rails] == [("VDD_IN", 1), ("VDD_CPU_GPU_CV", 2), ("VDD_SOC", 3)]
    assert {os.path.realpath(r.hwmon) for r in rails} == {os.path.realpath(hwmon)}  # drivers/ + devices/ deduplicated
    agx = discover_ina3221_rails(agx_orin_sysfs[0])
    # NC, a disabled channel and the sum channel (in7) are skipped.
    assert [r.name for r in agx] == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"]
    assert discover_ina3221_rails(sysfs.parent / "empty") == []


def test_power_is_voltage_times_current(orin_nano_sysfs: tuple[Path, Path]) -> None:
    sysfs, hwmon = orin_nano_sysfs
    monitor = Ina3221Monitor(sysfs_root=sysfs, interval_s=0)
    assert monitor.source == "ina3221:VDD_IN"
    readings = monitor.read_rails()
    assert readings["VDD_IN"].voltage_v == pytest.approx(5.0)
    assert readings["VDD_IN"].current_a == pytest.approx(1.2)
    powers = {name: round(reading.power_w, 6) for name, reading in readings.items()}
    assert powers == {"VDD_IN": 6.0, "VDD_CPU_GPU_CV": 2.0, "VDD_SOC": 1.5}
    with monitor:
        assert monitor.read().power_w == pytest.approx(6.0)
        set_rail(hwmon, 1, 4800, 2500)
        assert monitor.read().power_w == pytest.approx(12.0)


def test_energy_integrates_power_over_the_clock(orin_nano_sysfs: tuple[Path, Path]) -> None:
    sysfs, hwmon = orin_nano_sysfs
    clock = FakeClock()
    monitor = Ina3221Monitor(sysfs_root=sysfs, interval_s=0, clock=clock)
    monitor.start()
    first = monitor.read()
    assert first == PowerSample(timestamp_s=100.0, power_w=pytest.approx(6.0), energy_j=0.0)
    clock.advance(1.0)
    set_rail(hwmon, 1, 5000, 1600)  # 8 W
    assert monitor.read().energy_j == pytest.approx(7.0)  # trapezoid: (6 + 8) / 2 W x 1 s
    clock.advance(2.0)
    mark = monitor.read()
    assert mark.energy_j == pytest.approx(23.0)  # + 8 W x 2 s
    clock.advance(0.5)
    set_rail(hwmon, 1, 5000, 0)
    assert monitor.energy_since(mark) == pytest.approx(2.0)  # (8 + 0) / 2 W x 0.5 s
    assert monitor.samples_taken == 5
    monitor.stop()
    with pytest.raises(EipltrtError, match="not running.*start"):
        monitor.read()
    monitor.start()  # a restart counts from zero again
    assert monitor.read().energy_j == 0.0
    monitor.stop()


def test_explicit_rails_are_summed_and_unknown_rails_rejected(
    orin_nano_sysfs: tuple[Path, Path], agx_orin_sysfs: tuple[Path, Path, Path]
) -> None:
    sysfs, _ = orin_nano_sysfs
    with Ina3221Monitor(["VDD_CPU_GPU_CV", "VDD_SOC"], sysfs_root=sysfs, interval_s=0) as monitor:
        assert monitor.source == "ina3221:VDD_CPU_GPU_CV+VDD_SOC"
        assert monitor.read().power_w == pytest.approx(3.5)
    with pytest.raises(InputError, match=r"VDD_GPU not found; this board has VDD_IN, VDD_CPU_GPU_CV, VDD_SOC"):
        Ina3221Monitor(["VDD_GPU"], sysfs_root=sysfs)
    # No VDD_IN on AGX Orin: the total is the sum of every rail, as jtop reports it.
    with Ina3221Monitor(sysfs_root=agx_orin_sysfs[0], interval_s=0) as agx:
        assert agx.read().power_w == pytest.approx(5.0 + 3.0 + 4.0 + 0.9)


def test_sampler_interval_follows_the_chip(tmp_path: Path) -> None:
    make_ina3221_chip(tmp_path / "a", "1-0040", {1: "VDD_IN"}, update_interval_ms=2)
    assert Ina3221Monitor(sysfs_root=tmp_path / "a").interval_s == 0.005  # clamped
    make_ina3221_chip(tmp_path / "b", "1-0040", {1: "VDD_IN"}, update_interval_ms=7)
    assert Ina3221Monitor(sysfs_root=tmp_path / "b").interval_s == pytest.approx(0.007)
    make_ina3221_chip(tmp_path / "c", "1-0040", {1: "VDD_IN"}, update_interval_ms=None)
    assert Ina3221Monitor(sysfs_root=tmp_path / "c").interval_s == 0.01
    with pytest.raises(InputError, match="interval must be >= 0"):
        Ina3221Monitor(sysfs_root=tmp_path / "a", interval_s=-1.0)


def test_a_failed_read_holds_the_last_value(orin_nano_sysfs: tuple[Path, Path]) -> None:
    sysfs, hwmon = orin_nano_sysfs
    clock = FakeClock()
    with Ina3221Monitor(sysfs_root=sysfs, interval_s=0, clock=clock) as monitor:
        (hwmon / "curr1_input").unlink()
        clock.advance(1.0)
        held = monitor.read()
        assert held.power_w == pytest.approx(6.0) and held.energy_j == pytest.approx(6.0)
        assert monitor.read_errors == 1
        _write(hwmon / "curr1_input", "garbage")
        clock.advance(1.0)
        assert monitor.read().energy_j == pytest.approx(12.0)
        assert monitor.read_errors == 2


def test_unreadable_rails_fail_at_start(orin_nano_sysfs: tuple[Path, Path]) -> None:
    sysfs, hwmon = orin_nano_sysfs
    monitor = Ina3221Monitor(sysfs_root=sysfs, interval_s=0)
    (hwmon / "in1_input").unlink()
    with pytest.raises(BackendUnavailableError, match="INA3221 rails are not readable"):
        monitor.start()
    assert not monitor.running


def test_sampler_thread_integrates_while_running(orin_nano_sysfs: tuple[Path, Path]) -> None:
    sysfs, _ = orin_nano_sysfs
    monitor = Ina3221Monitor(sysfs_root=sysfs, interval_s=0.001)
    monitor.start()
    deadline = time.monotonic() + 10.0
    while monitor.samples_taken < 20 and time.monotonic() < deadline:
        time.sleep(0.005)
    taken = monitor.samples_taken
    monitor.stop()
    assert taken >= 20, "the sampler thread did not sample"
    after_stop = monitor.samples_taken
    time.sleep(0.02)
    assert monitor.samples_taken == after_stop  # the thread is gone
    # Constant 6 W: the integral equals 6 W x elapsed time between any two readings, exactly.
    clock = FakeClock()
    monitor = Ina3221Monitor(sysfs_root=sysfs, interval_s=0.001, clock=clock)
    with monitor:
        first = monitor.read()
        clock.advance(3.0)
        while monitor.samples_taken < 10:
            time.sleep(0.001)
        last = monitor.read()
    assert last.energy_j - first.energy_j == pytest.approx(18.0)


def test_energy_per_step_and_idle_baseline(orin_nano_sysfs: tuple[Path, Path]) -> None:
    sysfs, hwmon = orin_nano_sysfs
    clock = FakeClock()
    with Ina3221Monitor(sysfs_root=sysfs, interval_s=0, clock=clock) as monitor:
        idle_w = measure_idle_power_w(monitor, 2.0, sleep=clock.advance)
        assert idle_w == pytest.approx(6.0)
        set_rail(hwmon, 1, 5000, 2000)  # 10 W while "inferring"
        meter = StepEnergyMeter(monitor, window_steps=10, idle_power_w=idle_w)
        assert meter.step() is None  # opens the window (a reading at 10 W)
        results = []
        for _ in range(25):
            clock.advance(0.1)
            results.append(meter.step())
        assert [i for i, r in enumerate(results) if r is not None] == [9, 19]  # every 10 steps
        # (10 W - 6 W idle) x 0.1 s per step.
        assert [r for r in results if r is not None] == [pytest.approx(0.4), pytest.approx(0.4)]
        assert meter.last_j_per_step == pytest.approx(0.4) and meter.last_mean_power_w == pytest.approx(10.0)
    start, end = PowerSample(0.0, 5.0, 1.0), PowerSample(2.0, 5.0, 11.0)
    assert energy_per_step_j(start, end, 4) == pytest.approx(2.5)
    assert energy_per_step_j(start, end, 4, idle_power_w=3.0) == pytest.approx(1.0)
    with pytest.raises(InputError, match="at least one step"):
        energy_per_step_j(start, end, 0)
    with pytest.raises(InputError, match="ends before it starts"):
        energy_per_step_j(end, start, 1)


def test_min_window_duration_delays_the_result(orin_nano_sysfs: tuple[Path, Path]) -> None:
    clock = FakeClock()
    with Ina3221Monitor(sysfs_root=orin_nano_sysfs[0], interval_s=0, clock=clock) as monitor:
        meter = StepEnergyMeter(monitor, window_steps=2, min_window_s=1.0)
        meter.step()
        clock.advance(0.3)
        assert meter.step() is None and meter.step() is None  # 2 steps but only 0.3 s
        clock.advance(0.7)
        assert meter.step() == pytest.approx(6.0 * 1.0 / 3)


def test_factory_picks_the_ina3221_source(orin_nano_sysfs: tuple[Path, Path]) -> None:
    monitor, description = probe_power_monitor(sysfs_root=orin_nano_sysfs[0], interval_s=0)
    try:
        assert monitor is not None and monitor.running and monitor.available
        assert description == monitor.source == "ina3221:VDD_IN"
    finally:
        assert monitor is not None
        monitor.stop()
    with pytest.raises(InputError, match="rail.*VDD_X not found"):
        probe_power_monitor(sysfs_root=orin_nano_sysfs[0], rails=["VDD_X"])


def _nvml_works() -> bool:
    if importlib.util.find_spec("pynvml") is None:
        return False
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


@pytest.mark.filterwarnings("ignore:distro.linux_distribution:DeprecationWarning")
def test_factory_returns_none_with_a_reason_here(tmp_path: Path) -> None:
    if _nvml_works():
        pytest.skip("this machine has a working NVIDIA driver, so NVML is a power source")
    monitor, reason = probe_power_monitor(sysfs_root=tmp_path)
    assert monitor is None
    assert reason.startswith("no power source: no INA3221 hwmon under ")
    if importlib.util.find_spec("jtop") is not None:
        assert "jtop unusable: The jtop.service is not active" in reason
    else:
        assert "jtop not installed (pip install jetson-stats)" in reason
    if importlib.util.find_spec("pynvml") is not None:
        assert reason.endswith("NVML unavailable: NVML library not found (no NVIDIA driver)")
    else:
        assert reason.endswith("NVML Python bindings not installed (pip install nvidia-ml-py)")
    assert open_power_monitor(sysfs_root=tmp_path) is None
    assert probe_power_monitor("none") == (None, "no power source: power measurement disabled (preferred='none')")
    with pytest.raises(InputError, match="unknown power source 'rapl'.*ina3221, jtop, nvml"):
        probe_power_monitor("rapl")


def test_missing_libraries_are_reasons_not_exceptions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jtop", None)  # import jtop -> ImportError
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert probe_power_monitor("jtop") == (None, "no power source: jtop not installed (pip install jetson-stats)")
    assert probe_power_monitor("nvml") == (
        None,
        "no power source: NVML Python bindings not installed (pip install nvidia-ml-py)",
    )
    monitor, reason = probe_power_monitor(sysfs_root=tmp_path)
    assert monitor is None and reason.count(";") == 2


def test_importing_the_module_loads_no_vendor_library() -> None:
    code = "import sys, eipl_trt.power; print(sorted(m for m in ('jtop', 'pynvml') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class _StandInNvml(types.ModuleType):
    """A stand-in ``pynvml`` module (no NVIDIA driver here) with a programmable energy counter.

    It checks the counter-delta and fallback logic only; the real library's calls are the
    documented ``nvmlInit``/``nvmlDeviceGetTotalEnergyConsumption`` (mJ)/``nvmlDeviceGetPowerUsage`` (mW).
    """

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's name
        pass

    class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
        pass

    def __init__(self, energy_supported: bool) -> None:
        super().__init__("pynvml")
        self.energy_supported = energy_supported
        self.energy_mj = 1_000_000
        self.power_mw = 250_000
        self.inits = 0

    def nvmlInit(self) -> None:  # noqa: N802
        self.inits += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.inits -= 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
        if not self.energy_supported:
            raise self.NVMLError_NotSupported("Not Supported")
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:  # noqa: N802
        return self.power_mw


def test_nvml_energy_counter_deltas_and_power_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = _StandInNvml(energy_supported=True)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    clock = FakeClock()
    monitor, source = probe_power_monitor("nvml", clock=clock)
    assert monitor is not None and source == "nvml:gpu0:energy"
    mark = monitor.read()
    assert mark.energy_j == 0.0 and mark.power_w == pytest.approx(250.0)
    nvml.energy_mj += 12_500
    assert monitor.energy_since(mark) == pytest.approx(12.5)
    monitor.stop()
    assert nvml.inits == 0
    # Pre-Volta (no energy counter): sampled power usage, integrated.
    old = _StandInNvml(energy_supported=False)
    monkeypatch.setitem(sys.modules, "pynvml", old)
    monitor, source = probe_power_monitor("nvml", interval_s=0, clock=clock)
    assert monitor is not None and source == "nvml:gpu0:power"
    clock.advance(2.0)
    assert monitor.read().energy_j == pytest.approx(500.0)
    monitor.stop()
    assert old.inits == 0
