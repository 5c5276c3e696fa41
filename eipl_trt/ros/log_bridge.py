"""Route the eipl_trt library's stdlib logging (runner loads, state resets, switches) to a ROS logger."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["RosLogHandler", "attach", "detach"]

LIBRARY_LOGGER = "eipl_trt"


class RosLogHandler(logging.Handler):
    """Forwards records at INFO and above to an rclpy logger (``node.get_logger()``)."""

    def __init__(self, ros_logger: Any):
        super().__init__(logging.INFO)
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        """Log ``record`` at the matching ROS severity, prefixed with the library logger's name."""
        try:
            text = f"{record.name}: {record.getMessage()}"
            if record.levelno >= logging.ERROR:
                self._ros_logger.error(text)
            elif record.levelno >= logging.WARNING:
                self._ros_logger.warning(text)
            else:
                self._ros_logger.info(text)
        except Exception:  # logging must never break a step
            self.handleError(record)


def attach(ros_logger: Any) -> RosLogHandler:
    """Send the ``eipl_trt`` loggers' INFO+ records to ``ros_logger`` (instead of stderr); returns the handler."""
    handler = RosLogHandler(ros_logger)
    library = logging.getLogger(LIBRARY_LOGGER)
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    library.propagate = False
    return handler


def detach(handler: RosLogHandler) -> None:
    """Undo :func:`attach`."""
    library = logging.getLogger(LIBRARY_LOGGER)
    library.removeHandler(handler)
    library.propagate = True
