"""Stopping the processes we start, the one way: SIGTERM, a bounded wait, then SIGKILL."""

from __future__ import annotations

import signal
import subprocess
from types import FrameType


def stop_process(process: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """Terminate ``process`` and wait; kill it if it is still there after ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """Make SIGTERM end this process like Ctrl-C does, so every process it started is stopped."""
    signal.signal(signal.SIGTERM, _interrupt)
