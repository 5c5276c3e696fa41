"""Jetson power from the INA3221 monitor's hwmon files (Linux kernel ``ina3221`` driver).

Each INA3221 exposes up to three channels under ``.../hwmon/hwmonN/``: ``in{N}_label`` (rail name,
e.g. ``VDD_IN``), ``in{N}_input`` (bus voltage, mV), ``curr{N}_input`` (current, mA) and optionally
``in{N}_enable`` and ``update_interval`` (ms between fresh conversions). Rails are discovered by
label, never hard-coded: Orin NX/Nano have ``VDD_IN`` (module input, the total), ``VDD_CPU_GPU_CV``
and ``VDD_SOC``; AGX Orin has ``VDD_GPU_SOC``, ``VDD_CPU_CV``, ``VIN_SYS_5V0`` and no total rail.
Channel 7 ("sum of shunt voltages") and channels labelled ``NC`` (not connected) are skipped.

The sysfs root is a parameter, so the reader works on any directory tree with this layout.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from eipl_trt.errors import BackendUnavailableError, InputError
from eipl_trt.power.base import Clock, SampledPowerMonitor

__all__ = [
    "DEFAULT_SYSFS_ROOT",
    "TOTAL_RAILS",
    "Ina3221Rail",
    "RailReading",
    "find_ina3221_hwmon",
    "discover_ina3221_rails",
    "Ina3221Monitor",
]

_LOG = logging.getLogger(__name__)

DEFAULT_SYSFS_ROOT = "/sys"
#: Rails that measure the whole module input, in order of preference (as jtop chooses its total).
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
#: Where hwmon directories of INA3221 chips live, relative to the sysfs root.
_HWMON_GLOBS = ("bus/i2c/drivers/ina3221/*/hwmon/hwmon*", "bus/i2c/devices/*/hwmon/hwmon*")
#: Fastest sampler period used by default, s (the chip's fresh-data period is ~6.6 ms).
_MIN_DEFAULT_INTERVAL_S = 0.005
#: Sampler period when the chip does not report ``update_interval``, s (100 Hz).
_FALLBACK_INTERVAL_S = 0.01


@dataclass(frozen=True)
class RailReading:
    """One rail's reading: bus voltage (V), current (A) and their product (W)."""

    voltage_v: float
    current_a: float

    @property
    def power_w(self) -> float:
        """Power = V x I, W."""
        return self.voltage_v * self.current_a


@dataclass(frozen=True)
class Ina3221Rail:
    """One enabled INA3221 channel, found by its label.

    Attributes:
        name: the rail label (``VDD_IN``), made unique with ``@<device>`` if two chips repeat it.
        hwmon: the ``hwmonN`` directory.
        channel: the channel number N (1-3) of ``in{N}_input`` / ``curr{N}_input``.
    """

    name: str
    hwmon: Path
    channel: int

    def read(self) -> RailReading:
        """Read ``in{N}_input`` (mV) and ``curr{N}_input`` (mA) now. Raises OSError/ValueError."""
        millivolts = int((self.hwmon / f"in{self.channel}_input").read_text().split()[0])
        milliamps = int((self.hwmon / f"curr{self.channel}_input").read_text().split()[0])
        return RailReading(voltage_v=millivolts / 1000.0, current_a=milliamps / 1000.0)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def find_ina3221_hwmon(sysfs_root: str | os.PathLike[str] = DEFAULT_SYSFS_ROOT) -> list[Path]:
    """hwmon directories of INA3221 chips under ``sysfs_root``, without duplicates, sorted.

    A directory under ``bus/i2c/drivers/ina3221`` counts as is; one under ``bus/i2c/devices`` only
    if its ``name`` file says ``ina3221``.
    """
    root = Path(sysfs_root)
    found: dict[str, Path] = {}
    for pattern in _HWMON_GLOBS:
        for hwmon in sorted(root.glob(pattern)):
            if not hwmon.is_dir():
                continue
            if "drivers/ina3221" not in pattern and "ina3221" not in (_read_text(hwmon / "name") or ""):
                continue
            found.setdefault(os.path.realpath(hwmon), hwmon)
    return sorted(found.values())


def _channel_of(label_file: Path) -> int | None:
    stem = label_file.name[: -len("_label")]
    digits = stem[2:] if stem.startswith("in") else ""
    return int(digits) if digits.isdigit() else None


def discover_ina3221_rails(sysfs_root: str | os.PathLike[str] = DEFAULT_SYSFS_ROOT) -> list[Ina3221Rail]:
    """All readable, enabled, connected INA3221 rails under ``sysfs_root``, in discovery order."""
    rails: list[Ina3221Rail] = []
    seen: set[str] = set()
    for hwmon in find_ina3221_hwmon(sysfs_root):
        for label_file in sorted(hwmon.glob("in*_label")):
            channel = _channel_of(label_file)
            label = _read_text(label_file)
            if channel is None or not label or channel == 7:
                continue
            if label.upper() in ("NC", "N/C") or label.upper().startswith("NC "):
                continue
            if not (hwmon / f"in{channel}_input").is_file() or not (hwmon / f"curr{channel}_input").is_file():
                continue
            if _read_text(hwmon / f"in{channel}_enable") == "0":
                continue
            name = label if label not in seen else f"{label}@{hwmon.parent.parent.name}"
            seen.add(name)
            rails.append(Ina3221Rail(name=name, hwmon=hwmon, channel=channel))
    return rails


def _update_interval_s(hwmon: Path) -> float | None:
    text = _read_text(hwmon / "update_interval")
    try:
        return int(text) / 1000.0 if text else None
    except ValueError:
        return None


class Ina3221Monitor(SampledPowerMonitor):
    """Power of one or more INA3221 rails (sum), integrated to energy in a sampler thread.

    Args:
        rails: rail labels to sum. None: the module total (``VDD_IN`` or ``POM_5V_IN``) if present,
            else the sum of all rails (what jtop reports as its total; rails may overlap on some
            modules, so pass explicit names for a precise scope).
        sysfs_root: the sysfs mount, ``/sys`` on a robot.
        interval_s: sampler period, s. None: the chip's ``update_interval`` (at least 5 ms), or
            10 ms if it has none. 0: no thread (samples only on :meth:`read`).
        clock: monotonic clock in s (tests inject their own).

    Raises:
        BackendUnavailableError: no INA3221 rail under ``sysfs_root``.
        InputError: a requested rail does not exist; the message lists the rails found.
    """

    def __init__(
        self,
        rails: Sequence[str] | None = None,
        *,
        sysfs_root: str | os.PathLike[str] = DEFAULT_SYSFS_ROOT,
        interval_s: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        found = discover_ina3221_rails(sysfs_root)
        if not found:
            raise BackendUnavailableError(
                f"no INA3221 hwmon under {Path(sysfs_root) / 'bus/i2c'} (not a Jetson, or the ina3221 "
                f"driver is not loaded)"
            )
        self.all_rails: tuple[Ina3221Rail, ...] = tuple(found)
        self.rails: tuple[Ina3221Rail, ...] = self._select(found, rails)
        if interval_s is None:
            chip_interval = _update_interval_s(self.rails[0].hwmon)
            interval_s = (
                max(chip_interval, _MIN_DEFAULT_INTERVAL_S) if chip_interval else _FALLBACK_INTERVAL_S
            )
        super().__init__(interval_s=interval_s, clock=clock)
        self.source = "ina3221:" + "+".join(rail.name for rail in self.rails)
        self.update_interval_s = _update_interval_s(self.rails[0].hwmon)

    @staticmethod
    def _select(found: Sequence[Ina3221Rail], wanted: Sequence[str] | None) -> tuple[Ina3221Rail, ...]:
        by_name = {rail.name: rail for rail in found}
        if wanted:
            missing = [name for name in wanted if name not in by_name]
            if missing:
                raise InputError(
                    f"INA3221 rail(s) {', '.join(missing)} not found; this board has "
                    f"{', '.join(by_name)}. Pass some of those (or none for the module total)."
                )
            return tuple(by_name[name] for name in wanted)
        for total in TOTAL_RAILS:
            if total in by_name:
                return (by_name[total],)
        return tuple(found)

    def read_rails(self) -> dict[str, RailReading]:
        """A fresh reading of every discovered rail (not only the summed ones), by name."""
        return {rail.name: rail.read() for rail in self.all_rails}

    def _open(self) -> None:
        for rail in self.rails:
            rail.read()  # fail now (OSError: permissions, unplugged) rather than in the thread
        _LOG.info(
            "INA3221 rails %s, summing %s, update_interval %s s",
            [rail.name for rail in self.all_rails],
            [rail.name for rail in self.rails],
            self.update_interval_s,
        )

    def _read_power_w(self) -> float:
        return sum(rail.read().power_w for rail in self.rails)

    def start(self) -> None:
        try:
            super().start()
        except OSError as exc:
            raise BackendUnavailableError(f"INA3221 rails are not readable: {exc}") from exc
