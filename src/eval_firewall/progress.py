"""Progress on stderr: each stage says when it starts and how long it took.

On a terminal the running stage is one animated line (a spinner, the elapsed time and, when the
stage has a total, how far it is); elsewhere (CI logs, pipes) it is a plain line when the stage
starts and one when it ends. Everything printed goes through :meth:`Progress._write`; text that
can come from data (stage names carry dataset names, warnings quote files) is made one inert
line first (:func:`eval_firewall.safeio.terminal.one_line`), so it cannot start a workflow command.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from .safeio.terminal import one_line

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
TICK = 0.1  # seconds between redraws of the running stage


class Progress:
    """Reports stages of a run. ``Progress(enabled=False)`` says nothing."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._stages: list[_Stage] = []
        self._lock = threading.Lock()
        self._live = False          # a stage's animated line is on screen, without a newline
        self._ticker: threading.Thread | None = None

    # --- the one place that writes ------------------------------------------------------------

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _line(self, text: str) -> None:
        """A finished line; replaces the animated one if it is on screen."""
        with self._lock:
            self._clear()
            self._write(text + "\n")

    def _clear(self) -> None:
        if self._live:
            self._write("\r\033[K")
            self._live = False

    # --- messages -----------------------------------------------------------------------------

    def note(self, message: str) -> None:
        """Print ``message`` as one line, unless progress is off."""
        if self.enabled:
            self._line(f"eval-firewall: {one_line(message)}")

    def warn(self, message: str) -> None:
        """Shown even when progress is off: something the user should know about."""
        self._line(f"eval-firewall: warning: {one_line(message)}")

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator["_Stage"]:
        """A stage of the run: announced now, timed when the ``with`` block ends.

        ``total``: how many units (rows) the stage will :meth:`_Stage.advance` through, when
        known; without it a terminal shows a spinner and the elapsed time.
        """
        stage = _Stage(self, name, total)
        self._start(stage)
        try:
            yield stage
        finally:
            self._end(stage)

    # --- stages -------------------------------------------------------------------------------

    def _start(self, stage: "_Stage") -> None:
        if not self.enabled:
            return
        if not self.tty:
            self._line(f"eval-firewall: {stage.name}…")
            return
        with self._lock:
            self._clear()
            self._stages.append(stage)
            self._draw()
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="eval-firewall progress",
                                                daemon=True)
                self._ticker.start()

    def _end(self, stage: "_Stage") -> None:
        if not self.enabled:
            return
        seconds = time.perf_counter() - stage.started
        done = f" ({stage.count:,} rows)" if stage.count else ""
        if not self.tty:
            self._line(f"eval-firewall: {stage.name}{done} in {seconds:.1f}s")
            return
        with self._lock:
            if stage in self._stages:
                self._stages.remove(stage)
            ticker = self._ticker if not self._stages else None
            if ticker is not None:
                self._ticker = None
            self._clear()
            self._write(f"✓ {stage.name}{done} in {seconds:.1f}s\n")
            self._draw()
        if ticker is not None:
            ticker.join()

    def _draw(self) -> None:
        """Draw the innermost running stage's line (the lock is held)."""
        if not self._stages:
            return
        stage = self._stages[-1]
        seconds = time.perf_counter() - stage.started
        spin = SPINNER[int(seconds / TICK) % len(SPINNER)]
        if stage.total:
            share = min(stage.count / stage.total, 1.0)
            done = f" {stage.count:,}/{stage.total:,} ({share:.0%})"
        else:
            done = f" {stage.count:,} rows" if stage.count else ""
        self._write(f"\r\033[K{spin} {stage.name}…{done} {seconds:.0f}s")
        self._live = True

    def _tick(self) -> None:
        while True:
            time.sleep(TICK)
            with self._lock:
                if self._ticker is not threading.current_thread():
                    return
                self._draw()


class _Stage:
    def __init__(self, progress: Progress, name: str, total: int | None) -> None:
        self.progress, self.name, self.total = progress, one_line(name), total
        self.count = 0
        self.started = time.perf_counter()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units (rows) done in this stage."""
        self.count += n
