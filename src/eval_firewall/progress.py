"""Progress on stderr: a bar on a terminal, a few quiet lines otherwise."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from collections.abc import Iterator

from .terminal import one_line


class Progress:
    """Reports stages of a run. ``Progress(enabled=False)`` says nothing."""

    def __init__(self, *, enabled: bool = True, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()

    def note(self, message: str) -> None:
        if self.enabled:
            print(f"eval-firewall: {one_line(message)}", file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        """Shown even when progress is off: something the user should know about."""
        print(f"eval-firewall: warning: {one_line(message)}", file=self.stream,
              flush=True)

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator["_Stage"]:
        stage = _Stage(self, name, total)
        try:
            yield stage
        finally:
            stage.close()


class _Stage:
    def __init__(self, progress: Progress, name: str, total: int | None) -> None:
        self.progress, self.name, self.total = progress, name, total
        self.count = 0
        self.started = time.perf_counter()
        self.bar = None
        if progress.tty:
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=one_line(name), file=progress.stream, leave=False,
                            unit="row", dynamic_ncols=True)

    def advance(self, n: int = 1) -> None:
        self.count += n
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.progress.enabled:
            seconds = time.perf_counter() - self.started
            done = f" ({self.count:,} rows)" if self.count else ""
            self.progress.note(f"{self.name}{done} in {seconds:.1f}s")
