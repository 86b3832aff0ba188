"""Run the examples that must run in worker processes, at most `jobs` at a time.

The order: examples marked exclusive (`extra.gallery.exclusive`: they use every core) first,
each alone; then the others, `jobs` at a time. In each group the longest run first (by the time
of their last run; an example never measured counts as longest), so that a long example does
not start last and keep the build waiting alone.

Each worker (`gallery_ext._worker`) is a process of its own that runs one example at a time and
stays up for the next (an example that imports torch and jax pays the import once per worker,
as the serial build pays it once). What an example prints is kept, per example, and handed back
when it finishes, so the logs of examples that ran at once never interleave.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ._state import Example

TOOLS = Path(__file__).resolve().parents[1]
"""The folder that holds `gallery_ext`: workers import it from there."""

KILL_GRACE_S = 60.0
"""How long past its timeout a worker may take before it is killed (a stuck compiled call)."""


@dataclasses.dataclass(frozen=True)
class Task:
    """One example to run, with what the scheduler knows about it."""

    example: Example
    seconds: float | None = None
    """Its time in the last run that measured it; None if never measured."""
    exclusive: bool = False
    """It needs the whole machine: nothing runs beside it."""


def run_order(tasks: Sequence[Task]) -> list[Task]:
    """Exclusive tasks first, then the others; longest first (unmeasured first) in each group.

    >>> from pathlib import Path
    >>> def task(name, seconds, exclusive=False):
    ...     return Task(Example(Path(name), Path(name), name), seconds, exclusive)
    >>> [
    ...     t.example.name
    ...     for t in run_order(
    ...         [task("a", 1.0), task("b", 9.0), task("c", 5.0, True), task("d", None)]
    ...     )
    ... ]
    ['c', 'd', 'b', 'a']
    """

    def longest_first(task: Task) -> tuple[bool, float, str]:
        seconds = task.seconds if task.seconds is not None else float("inf")
        return (not task.exclusive, -seconds, task.example.name)

    return sorted(tasks, key=longest_first)


def next_task(pending: Sequence[Task], running: Sequence[Task], jobs: int) -> Task | None:
    """The task to start now, given those running, or None (wait for one to finish).

    `pending` is in `run_order`. At most `jobs` tasks run at once, and an exclusive task runs
    alone: it waits for the running ones to finish, and nothing starts beside it.
    """
    if not pending or len(running) >= jobs or any(task.exclusive for task in running):
        return None
    head = pending[0]
    if head.exclusive and running:
        return None
    return head


@dataclasses.dataclass
class Outcome:
    """How one example's run in a worker went."""

    seconds: float = 0.0
    peak_mb: float = 0.0
    failure: str | None = None
    """Its traceback (or why its worker died), if it failed."""
    crashed: bool = False
    """Its worker died or was killed: it wrote no page for this run."""
    log: list[tuple[str, int, str]] = dataclasses.field(default_factory=list)
    """The records of mkdocs' loggers while it ran: (logger name, level, message)."""
    output: str = ""
    """What the worker process wrote to stdout and stderr while it ran."""
    wall_seconds: float = 0.0
    """Time from sending the example to the worker to its answer."""


class _Worker:
    """A `gallery_ext._worker` process, its output file and the answer pipe."""

    def __init__(self, config_file: Path, level: int, output: IO[bytes]) -> None:
        read, write = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOOLS), env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "gallery_ext._worker", "--config", str(config_file)]
        command += ["--results-fd", str(write), "--level", str(level)]
        self.output = output
        self.process = subprocess.Popen(
            command,
            cwd=config_file.parent,
            env=env,
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=(write,),
            start_new_session=True,  # its own process group: killing it kills what it started
        )
        os.close(write)
        self.answers = os.fdopen(read, "rb")
        self.task: Task | None = None
        self.started = 0.0
        self._offset = 0

    def start(self, task: Task, timeout: float) -> None:
        self.task, self.started = task, time.monotonic()
        self._offset = os.fstat(self.output.fileno()).st_size
        assert self.process.stdin is not None
        request = {"source": str(task.example.source), "timeout": timeout}
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()

    def printed(self) -> str:
        """What the process wrote since the current task started."""
        with open(self.output.name, "rb") as output:
            output.seek(self._offset)
            return output.read().decode(errors="replace")

    def answer(self) -> Outcome:
        """The answer to the current task (blocks), or a failure if the process died."""
        line = self.answers.readline()
        wall = time.monotonic() - self.started
        if line:
            data: dict[str, Any] = json.loads(line)
            log = [tuple(record) for record in data.pop("log")]
            return Outcome(**data, log=log, output=self.printed(), wall_seconds=wall)  # type: ignore[arg-type]
        code = self.process.wait()
        return Outcome(
            failure=f"The worker process running it died (exit code {code}).",
            crashed=True,
            output=self.printed(),
            wall_seconds=wall,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def finish(self) -> None:
        """Ask the process to exit (it does once its current task, if any, is done)."""
        assert self.process.stdin is not None
        if not self.process.stdin.closed:
            with contextlib.suppress(OSError):  # it died already
                self.process.stdin.close()

    def close(self) -> None:
        """Wait for the process to exit (killing it after 30 s) and release its files."""
        self.finish()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.answers.close()
        self.output.close()


class WorkerPool:
    """Runs examples in up to `jobs` worker processes.

    Args:
        config_file: The site's mkdocs.yml (workers load it; they run in its folder).
        jobs: The most examples running at once.
        timeout: Seconds each example may spend in its code (enforced in the worker, as in a
            serial build); a worker still busy `KILL_GRACE_S` after that is killed.
        log_dir: A folder for the workers' output files.
        level: The log level of mkdocs' loggers in the workers.
    """

    def __init__(
        self, config_file: Path, jobs: int, timeout: float, log_dir: Path, level: int
    ) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.config_file = config_file
        self.jobs = jobs
        self.timeout = timeout
        self.log_dir = log_dir
        self.level = level

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome]]:
        """Run `tasks`; yield each with its outcome as it finishes."""
        pending = run_order(tasks)
        idle: list[_Worker] = []
        busy: list[_Worker] = []
        done: list[_Worker] = []
        started = 0
        try:
            while pending or busy:
                while task := next_task(pending, [w.task for w in busy if w.task], self.jobs):
                    pending.remove(task)
                    if idle:
                        worker = idle.pop()
                    else:
                        started += 1
                        output = (self.log_dir / f"worker-{started}.log").open("wb")
                        worker = _Worker(self.config_file, self.level, output)
                    worker.start(task, self.timeout)
                    busy.append(worker)
                ready, _, _ = select.select([w.answers for w in busy], [], [], 1.0)
                for worker in list(busy):
                    overrun = time.monotonic() - worker.started > self.timeout + KILL_GRACE_S
                    if worker.answers not in ready and not overrun:
                        continue
                    busy.remove(worker)
                    task = worker.task
                    assert task is not None
                    if worker.answers in ready:
                        outcome = worker.answer()
                    else:
                        worker.kill()
                        outcome = Outcome(
                            failure=(
                                f"{task.example.name} was still running {KILL_GRACE_S:g} s past "
                                f"its timeout of {self.timeout:g} s (stuck in compiled code?): "
                                "its worker process was killed."
                            ),
                            crashed=True,
                            output=worker.printed(),
                        )
                    worker.task = None
                    if outcome.crashed:
                        worker.kill()
                        done.append(worker)
                    elif pending:
                        idle.append(worker)
                    else:
                        worker.finish()  # nothing left for it: let it exit while others work
                        done.append(worker)
                    yield task, outcome
        finally:
            for worker in busy:
                worker.kill()
            for worker in [*idle, *busy, *done]:
                worker.finish()
            for worker in [*idle, *busy, *done]:
                worker.close()
