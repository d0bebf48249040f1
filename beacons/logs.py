import logging
import time

logger = logging.getLogger("beacons")


class ThrottledWarning:
    """Logs a warning at most once per ``every`` seconds: an outage must not flood the logs."""

    def __init__(self, every: float = 60.0):
        self.every = every
        self._last = float("-inf")

    def __call__(self, message: str, *args, exc_info=False) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            logger.warning(message, *args, exc_info=exc_info)
