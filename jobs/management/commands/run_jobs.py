"""``manage.py run_jobs``: run background jobs from the command line."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from jobs.registry import JOBS
from jobs.runner import runner_loop
from jobs.services import job_run_now, jobs_ensure, jobs_run_due


class Command(BaseCommand):
    help = (
        "Run the background jobs that are due (once), one job now (--job), or keep running them (--loop). "
        "Safe beside running servers: each due run happens once across every process."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", choices=sorted(JOBS), help="Run this job now, whether due or not.")
        parser.add_argument("--loop", action="store_true", help="Keep running due jobs, as a server does.")
        parser.add_argument("--seconds", type=float, default=None, help="With --loop: stop after this long.")
        parser.add_argument("--tick", type=float, default=1.0, help="With --loop: seconds between ticks.")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs_ensure(now=timezone.now())
        if options["job"]:
            run = job_run_now(name=options["job"])
            if run is None:
                raise CommandError(f"{options['job']} is running in another process; try again later.")
            self._report([run])
            return
        if not options["loop"]:
            self._report(jobs_run_due())
            return
        stop = threading.Event()
        if options["seconds"] is not None:
            threading.Timer(options["seconds"], stop.set).start()
        try:
            runner_loop(stop, options["tick"])
        except KeyboardInterrupt:
            stop.set()
        time.sleep(0)

    def _report(self, runs: list) -> None:
        if not runs:
            self.stdout.write("No job was due.")
        for run in runs:
            state = "ok" if run.ok else "FAILED"
            self.stdout.write(f"{run.name}: {state} in {run.duration_ms:.0f} ms. {run.result}")
