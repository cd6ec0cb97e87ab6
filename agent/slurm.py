"""The one adapter between the agent and Slurm 22.05: scontrol and squeue, with time limits.

Outputs parsed here are Slurm 22.05's exact ones (docs/architecture.md, "Slurm"); anything else
raises SlurmError naming the command and what it printed, never an IndexError deep in reconcile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.process import CommandTimeout, minimal_environment, run_command
from agent.slurm_env import MalformedValue, is_number, license_counts

# squeue fields: unique job id (%A: also unique for each array element, as SLURM_JOB_ID is in
# the prolog, where %i would print "base_index"), licenses, state.
SQUEUE_FORMAT = "%A|%W|%T"
SQUEUE_FIELDS = 3
# squeue fields of pending jobs for the usage history's demand: licenses, reason.
DEMAND_FORMAT = "%W|%r"
# `duration=infinite` becomes 365 days in 22.05 anyway; say so explicitly and renew it in time.
RESERVATION_LIFETIME = timedelta(days=365)
RENEW_WHEN_LESS_THAN = timedelta(days=30)
SLURM_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
NULL = "(null)"


class SlurmError(RuntimeError):
    """A Slurm command failed, timed out or printed something we cannot read."""

    def __init__(self, argv: Sequence[str], problem: str) -> None:
        super().__init__(f"{' '.join(argv)}: {problem}")
        self.argv = list(argv)
        self.problem = problem


@dataclass(frozen=True)
class SlurmLicense:
    """One line of `scontrol show lic -o`."""

    name: str
    total: int
    used: int
    reserved: int


@dataclass(frozen=True)
class SlurmJob:
    """One line of squeue: what cleanup needs to know about a job."""

    job_id: str
    licenses: dict[str, int]
    state: str


@dataclass(frozen=True)
class Reservation:
    """The parts of a reservation the agent manages."""

    name: str
    licenses: dict[str, int]
    end_time: datetime | None

    def needs_renewal(self, now: datetime) -> bool:
        """True when the reservation lapses within RENEW_WHEN_LESS_THAN (or its end is unknown)."""
        return self.end_time is None or self.end_time - now < RENEW_WHEN_LESS_THAN


def _key_values(line: str) -> dict[str, str]:
    """`A=1 B=x y` style records of `scontrol -o`; a value never contains a space here."""
    return dict(token.split("=", 1) for token in line.split() if "=" in token)


def _count(argv: Sequence[str], record: Mapping[str, str], key: str) -> int:
    raw = record.get(key)
    if raw is None or not is_number(raw):
        raise SlurmError(argv, f"{key}={raw} is not a count in {record!r}")
    return int(raw)


def format_license_list(licenses: Mapping[str, int]) -> str:
    return ",".join(f"{name}:{count}" for name, count in sorted(licenses.items()))


def parse_licenses(argv: Sequence[str], output: str) -> dict[str, SlurmLicense]:
    """`scontrol show lic -o` -> licenses by name; blank or "No licenses" output is empty."""
    licenses: dict[str, SlurmLicense] = {}
    for line in output.splitlines():
        if not line.strip() or not line.startswith("LicenseName="):
            continue
        record = _key_values(line)
        name = record["LicenseName"]
        licenses[name] = SlurmLicense(
            name=name,
            total=_count(argv, record, "Total"),
            used=_count(argv, record, "Used"),
            reserved=_count(argv, record, "Reserved"),
        )
    return licenses


def parse_jobs(argv: Sequence[str], output: str) -> list[SlurmJob]:
    """squeue -h -o SQUEUE_FORMAT -> jobs; a line of another shape raises SlurmError."""
    jobs: list[SlurmJob] = []
    for line in output.splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != SQUEUE_FIELDS:
            raise SlurmError(argv, f"expected {SQUEUE_FIELDS} '|'-separated fields: {line!r}")
        job_id, licenses, state = (f.strip() for f in fields)
        if not is_number(job_id):
            raise SlurmError(argv, f"job id {job_id!r} is not a number: {line!r}")
        try:
            counts = license_counts(licenses)
        except MalformedValue as error:
            raise SlurmError(argv, f"{error}: {line!r}") from None
        jobs.append(SlurmJob(job_id=job_id, licenses=counts, state=state))
    return jobs


def parse_demand(argv: Sequence[str], output: str) -> dict[str, int]:
    """squeue -h -o DEMAND_FORMAT of pending jobs -> licenses wanted per license by the jobs
    whose reason is `Licenses` (they would run if the tokens were there: unmet demand, not jobs
    waiting for nodes or their begin time)."""
    demand: dict[str, int] = {}
    for line in output.splitlines():
        if not line.strip():
            continue
        licenses, separator, reason = line.partition("|")
        if not separator:
            raise SlurmError(argv, f"expected 'licenses|reason': {line!r}")
        if reason.strip() != "Licenses":
            continue
        try:
            counts = license_counts(licenses.strip())
        except MalformedValue as error:
            raise SlurmError(argv, f"{error}: {line!r}") from None
        for name, count in counts.items():
            demand[name] = demand.get(name, 0) + count
    return demand


def parse_reservation(argv: Sequence[str], output: str) -> Reservation:
    """One `scontrol show reservation NAME -o` record."""
    record = _key_values(output)
    if "ReservationName" not in record:
        raise SlurmError(argv, f"no ReservationName in {output.strip()!r}")
    try:
        licenses = license_counts(record.get("Licenses", NULL))
    except MalformedValue as error:
        raise SlurmError(argv, str(error)) from None
    end = record.get("EndTime")
    try:
        end_time = datetime.strptime(end, SLURM_TIME_FORMAT) if end else None
    except ValueError:
        end_time = None  # "Unknown" and the like: renew, which sets a known end
    return Reservation(name=record["ReservationName"], licenses=licenses, end_time=end_time)


class Slurm:
    """scontrol/squeue at absolute paths (cron and hooks have no PATH), each run time-limited."""

    def __init__(
        self,
        scontrol: str,
        squeue: str,
        *,
        slurm_conf: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.scontrol = scontrol
        self.squeue = squeue
        self.timeout = timeout
        self.environment = minimal_environment({"SLURM_CONF": slurm_conf} if slurm_conf else {})

    def _run(self, argv: list[str], *, allow_failure: bool = False) -> tuple[int, str]:
        try:
            result = run_command(argv, timeout=self.timeout, env=self.environment)
        except CommandTimeout:
            raise SlurmError(argv, f"timed out after {self.timeout:g} s") from None
        except OSError as error:
            raise SlurmError(argv, f"cannot run: {error.strerror or error}") from None
        if result.returncode != 0 and not allow_failure:
            problem = (result.stderr or result.stdout).strip() or "no output"
            raise SlurmError(argv, f"exit {result.returncode}: {problem}")
        return result.returncode, result.stdout + result.stderr

    def licenses(self) -> dict[str, SlurmLicense]:
        argv = [self.scontrol, "show", "lic", "-o"]
        return parse_licenses(argv, self._run(argv)[1])

    def jobs(self) -> list[SlurmJob]:
        """Every job squeue shows (pending, running, completing...), array elements one by one."""
        argv = [self.squeue, "-h", "-r", "--all", "-o", SQUEUE_FORMAT]
        return parse_jobs(argv, self._run(argv)[1])

    def license_demand(self) -> dict[str, int]:
        """Licenses wanted per Slurm license by jobs pending for licenses (usage history)."""
        argv = [self.squeue, "-h", "-r", "--all", "-t", "PENDING", "-o", DEMAND_FORMAT]
        return parse_demand(argv, self._run(argv)[1])

    def reservation(self, name: str) -> Reservation | None:
        """The reservation, or None when Slurm says it does not exist."""
        argv = [self.scontrol, "show", "reservation", name, "-o"]
        returncode, output = self._run(argv, allow_failure=True)
        if returncode != 0:
            if "not found" in output:
                return None
            raise SlurmError(argv, f"exit {returncode}: {output.strip() or 'no output'}")
        return parse_reservation(argv, output)

    def create_reservation(self, name: str, user: str, licenses: Mapping[str, int]) -> None:
        """A license-only reservation (no nodes) for `user`, starting now, lasting a year."""
        lifetime_days = RESERVATION_LIFETIME.days
        self._run(
            [
                self.scontrol,
                "create",
                "reservation",
                f"reservationname={name}",
                f"licenses={format_license_list(licenses)}",
                "starttime=now",
                f"duration={lifetime_days}-00:00:00",
                "flags=license_only",
                f"users={user}",
            ]
        )

    def update_reservation(
        self, name: str, licenses: Mapping[str, int], *, renew: bool = False
    ) -> None:
        """Replace the reservation's whole license list; `renew` also pushes its end a year out."""
        argv = [
            self.scontrol,
            "update",
            f"reservationname={name}",
            f"licenses={format_license_list(licenses)}",
        ]
        if renew:
            argv.append(f"endtime=now+{RESERVATION_LIFETIME.days}days")
        self._run(argv)

    def delete_reservation(self, name: str) -> None:
        self._run([self.scontrol, "delete", f"reservationname={name}"])

    def requeue(self, job_id: str) -> None:
        """Put an ended batch job back in the queue (PENDING); its prolog books again.

        Plain `requeue`, not `requeuehold` + release: the requeued job waits BeginTime
        (cred_expire + 1 s) and then passes the prolog like any other job, which books
        only when the pool has the licenses. A held job would need the agent to release
        it later and would stay stuck if the agent never did.
        """
        self._run([self.scontrol, "requeue", job_id])
