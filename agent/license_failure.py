"""Did a failed job die for lack of a license? The epilog's question, answered without Slurm.

Only the epilog of a job that ended with a non-zero exit code imports this module. Slurm 22.05
gives EpilogSlurmctld `0:0` in SLURM_JOB_EXIT_CODE2 for a job cancelled by a user, killed at
its time limit or by a node failure (measured, docs/agent.md), so those never get here: only
the batch script's own non-zero exit does.

A job is looked at when it asked for a tracked license (a product.feature in
SLURM_JOB_LICENSES) or a `license_failures.rules` entry names it. It died for lack of a
license when:
1. its exit code is one a rule about it lists (`exit_codes`), or
2. the tail of its stdout/stderr holds a license error of the catalogue (agent.license_errors)
   or of a rule about it (`patterns`), and no `not_license_failures` rule matches it.

What to do then (requeue or leave failed, count, record) is agent.requeue's, imported only
once a failure is recognised: the normal epilog never loads subprocess or the Slurm adapter.
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.failure_settings import FailureRule, LicenseFailureSettings
from agent.job_output import Unreadable, output_files, read_tail, shown
from agent.license_errors import LicenseError, search
from agent.slurm_env import MalformedValue, exit_code, is_number, parse_job_licenses

if TYPE_CHECKING:
    import logging

    from agent.config import AgentConfig


class ScanTimeout(Exception):
    """The search ran past `license_failures.scan_timeout`."""


@dataclass(frozen=True)
class EndedJob:
    """What EpilogSlurmctld's environment says about the job that ended."""

    job_id: str
    user: str
    uid: int | None
    name: str
    exit_code: int
    restart_count: int
    licenses: dict[str, int]
    environ: Mapping[str, str]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> EndedJob:
        """Raises MalformedValue when a variable the decision needs is unusable."""
        job_id = environ.get("SLURM_JOB_ID", "")
        if not is_number(job_id):
            raise MalformedValue(f"SLURM_JOB_ID={job_id!r} is not a job number")
        uid = environ.get("SLURM_JOB_UID", "")
        restarts = environ.get("SLURM_JOB_RESTART_COUNT", "0")
        return cls(
            job_id=job_id,
            user=environ.get("SLURM_JOB_USER") or uid or "?",
            uid=int(uid) if is_number(uid) else None,
            name=environ.get("SLURM_JOB_NAME", ""),
            exit_code=exit_code(environ),
            restart_count=int(restarts) if is_number(restarts) else 0,
            licenses=parse_job_licenses(environ.get("SLURM_JOB_LICENSES")),
            environ=environ,
        )

    @property
    def feature(self) -> str:
        """The licenses concerned, as events name them: `abaqus.abaqus,abaqus.cae`."""
        return ",".join(sorted(self.licenses))


@dataclass(frozen=True)
class Verdict:
    """A recognised license failure: what matched, where, and whether a requeue is allowed."""

    rule: str  # FlexNet -4 'Licensed number of users already reached' / exit code 39 (rule ...)
    output_file: str | None
    feature: str
    requeue_off_by: str | None  # the rule that turns requeueing off for this job, if any


def handle(config: AgentConfig, log: logging.Logger, environ: Mapping[str, str]) -> None:
    """The epilog's part for a failed job: recognise a license failure and have it acted upon."""
    settings = config.license_failures
    try:
        job = EndedJob.from_environ(environ)
    except MalformedValue as error:
        job_id = environ.get("SLURM_JOB_ID")
        log.error("job %s: not checked for a license failure: %s", job_id, error)
        return
    verdict = recognise(job, settings, log)
    if verdict is None:
        return
    from agent import requeue  # subprocess and the Slurm adapter: only for a recognised failure

    requeue.act(config, log, job, verdict)


def recognise(
    job: EndedJob, settings: LicenseFailureSettings, log: logging.Logger
) -> Verdict | None:
    """The license failure this job died of, or None (also when its files could not tell)."""
    rules = [rule for rule in settings.rules if rule.selector.selects(job.licenses, job.name)]
    if job.exit_code == 0 or not (job.licenses or rules):
        return None
    feature = job.feature or ",".join(r.selector.product or r.selector.label for r in rules)
    off = next((rule.selector.label for rule in rules if not rule.requeue), None)
    for rule in rules:
        if job.exit_code in rule.exit_codes:
            found = f"exit code {job.exit_code} (rule {rule.selector.label})"
            return Verdict(found, None, feature, off)
    try:
        with _time_limit(settings.scan_timeout):
            return _search_output(job, settings, rules, feature, off, log)
    except ScanTimeout:
        log.warning(
            "job %s not requeued: searching its output took longer than %g s; left as it is",
            job.job_id,
            settings.scan_timeout,
        )
        return None


def _search_output(
    job: EndedJob,
    settings: LicenseFailureSettings,
    rules: list[FailureRule],
    feature: str,
    off: str | None,
    log: logging.Logger,
) -> Verdict | None:
    patterns = _rule_patterns(rules)
    for path in output_files(job.environ):
        try:
            text = read_tail(
                path, owner=job.uid, limit=settings.tail_bytes, allowed=settings.output_folders
            )
        except Unreadable as problem:
            log.warning("job %s: output not searched: %s", job.job_id, problem)
            continue
        found = search(text, patterns)
        if found is None:
            continue
        for number, veto in enumerate(settings.not_license_failures):
            if veto.matches(job.licenses, job.name, job.exit_code, text):
                log.info(
                    "job %s not requeued: %s in %s, but not_license_failures[%d] matches it",
                    job.job_id,
                    found.rule,
                    shown(path),
                    number,
                )
                return None
        return Verdict(found.rule, path, feature, off)
    return None


def _rule_patterns(rules: list[FailureRule]) -> list[tuple[LicenseError, re.Pattern[str]]]:
    """The admins' patterns of the rules about this job, named after their rule."""
    return [
        (LicenseError(f"rule {rule.selector.label}", pattern.pattern), pattern)
        for rule in rules
        for pattern in rule.patterns
    ]


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise ScanTimeout in the block after `seconds` (SIGALRM; the hook's main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise ScanTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
