"""A real single-node Slurm cluster (slurmctld + slurmd + its own munged) under one folder.

Everything it needs (slurm.conf, state, spool, logs, pid files, munge key and socket) lives under
`root`, ports are picked free at start and the node gets a unique name, so several clusters can
run on one machine next to each other and next to the machine's own Slurm or munge.

Timing choices (slurm.conf) that keep tests quick, and why:
- `AuthInfo=cred_expire=N` (default 120 s): Slurm holds a requeued batch job (e.g. refused by
  PrologSlurmctld) with reason BeginTime for cred_expire + 1 seconds; we shorten it.
- `SchedulerParameters=sched_interval=1,bf_interval=1`: the main and backfill loops retry pending
  jobs every second instead of every 60/30 s, so a job starts soon after licenses free up or its
  BeginTime passes.
- `MessageTimeout=5`, `KillWait=2`: a stuck daemon or a cancelled job is noticed in seconds.
- `MinJobAge=300` (Slurm's default) keeps finished jobs visible to squeue long enough for tests
  to read their final state (there is no accounting database).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from devstack.munge import INSTALL_HINT, MungeDaemon
from devstack.processes import (
    free_port,
    is_alive,
    kill,
    pids_with_environment,
    read_pid,
    stop_pid_file,
    wait_for,
)

# Every process of a cluster (daemons, slurmstepd, jobs, commands) carries this variable with the
# cluster's root as value: stop() finds what is left through it, never by command name.
MARKER_VARIABLE = "LM_DEVSTACK_SLURM_ROOT"

START_TIMEOUT = 30.0


class SlurmError(RuntimeError):
    """Slurm is not installed, did not start, or a Slurm command failed."""


class JobStatus(NamedTuple):
    """What squeue says about a job: state (RUNNING, PENDING, ...) and reason (Licenses, ...)."""

    state: str
    reason: str


@dataclass(frozen=True)
class HeldJob:
    """A submitted job that keeps running (holding its licenses) until `release()`."""

    job_id: int
    gate: Path

    def release(self) -> None:
        self.gate.touch()


def node_hardware() -> str:
    """This machine's CPU/memory description from `slurmd -C`, without NodeName and UpTime."""
    described = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True)
    first_line = described.stdout.splitlines()[0]
    return " ".join(word for word in first_line.split() if not word.startswith("NodeName="))


def license_spec(licenses: Mapping[str, int]) -> str:
    """`{"a@x": 2, "b@y": 1}` -> `a@x:2,b@y:1` (the syntax of Licenses= and `sbatch -L`)."""
    return ",".join(f"{name}:{count}" for name, count in licenses.items())


@dataclass
class SlurmCluster:
    """One controller and one compute node on 127.0.0.1, driven from Python."""

    root: Path
    licenses: dict[str, int] = field(default_factory=dict)
    prolog_slurmctld: Path | None = None
    epilog_slurmctld: Path | None = None
    name: str = field(default_factory=lambda: f"lm{uuid.uuid4().hex[:8]}")
    cred_expire: int = 5
    controller_port: int = 0
    node_port: int = 0

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()
        self.munge = MungeDaemon(self.root / "munge")

    @property
    def node_name(self) -> str:
        return f"{self.name}-node"

    @property
    def conf_file(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def job_dir(self) -> Path:
        """Working directory and output files of jobs submitted with `submit`."""
        return self.root / "jobs"

    @property
    def env(self) -> dict[str, str]:
        """Environment for Slurm commands (sbatch, squeue, scontrol) aimed at this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf_file), MARKER_VARIABLE: str(self.root)}

    def slurm_conf(self) -> str:
        """The whole slurm.conf: minimal, run as root, no cgroups, no accounting."""
        run_dir = self.root / "run"
        lines = [
            f"ClusterName={self.name}",
            f"SlurmctldHost={socket.gethostname().split('.')[0]}(127.0.0.1)",
            f"SlurmctldPort={self.controller_port}",
            f"SlurmdPort={self.node_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge.socket},cred_expire={self.cred_expire}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "ReturnToService=2",
            "MailProg=/bin/true",
            "SchedulerParameters=sched_interval=1,bf_interval=1",
            "MessageTimeout=5",
            "KillWait=2",
            "MinJobAge=300",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={run_dir / 'slurmctld.pid'}",
            f"SlurmdPidFile={run_dir / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.log_dir / 'slurmctld.log'}",
            f"SlurmdLogFile={self.log_dir / 'slurmd.log'}",
        ]
        if self.licenses:
            lines.append(f"Licenses={license_spec(self.licenses)}")
        if self.prolog_slurmctld:
            lines.append(f"PrologSlurmctld={self.prolog_slurmctld}")
        if self.epilog_slurmctld:
            lines.append(f"EpilogSlurmctld={self.epilog_slurmctld}")
        lines += [
            f"NodeName={self.node_name} NodeAddr=127.0.0.1 {node_hardware()} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Write slurm.conf, start munged, slurmctld and slurmd; return once the node is idle."""
        missing = [tool for tool in ("slurmctld", "slurmd", "sbatch") if shutil.which(tool) is None]
        if missing:
            raise SlurmError(f"{', '.join(missing)} not found: {INSTALL_HINT}")
        # munged insists that every folder above its socket be searchable by everyone.
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for folder in ("state", "spool", "run", "log", "jobs"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self.controller_port = self.controller_port or free_port()
        self.node_port = self.node_port or free_port()
        self.conf_file.write_text(self.slurm_conf())
        try:
            self.munge.start()
            self._daemon(["slurmctld", "-c", "-f", str(self.conf_file)])
            self._daemon(["slurmd", "-f", str(self.conf_file), "-N", self.node_name])
            wait_for(self._node_is_idle, START_TIMEOUT, f"node {self.node_name} to become idle")
        except Exception as error:
            self.stop()
            raise SlurmError(f"{error}\n{self.log_tail()}") from error

    def running(self) -> bool:
        """Both daemons of this cluster are alive (their pid files name live processes)."""
        pids = [read_pid(self.root / "run" / f"{daemon}.pid") for daemon in ("slurmctld", "slurmd")]
        return all(pid is not None and is_alive(pid) for pid in pids)

    def _daemon(self, argv: list[str]) -> None:
        """Start a Slurm daemon; both fork into the background once they are set up."""
        started = subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False)
        if started.returncode != 0:
            raise SlurmError(f"{argv[0]} exited {started.returncode}: {started.stderr.strip()}")

    def _node_is_idle(self) -> bool:
        shown = self.run("sinfo", "-h", "-n", self.node_name, "-o", "%T", check=False)
        return shown.stdout.strip() == "idle"

    def log_tail(self, lines: int = 20) -> str:
        """The end of every daemon log: what a failing start or test needs to show."""
        tails = []
        for log in sorted([*self.log_dir.glob("*.log"), self.munge.log_file]):
            if log.exists():
                text = "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                tails.append(f"--- {log} ---\n{text}")
        return "\n".join(tails)

    def stop(self) -> None:
        """Stop what this cluster started (jobs, slurmd, slurmctld, munged) and nothing else."""
        if self.running():
            # Jobs submitted by hand (the demo) carry the submitter's environment, not our
            # marker: Slurm itself must end them.
            self.cancel_all_jobs()
        run_dir = self.root / "run"
        stop_pid_file(run_dir / "slurmd.pid")
        stop_pid_file(run_dir / "slurmctld.pid")
        # slurmstepd and job processes outlive slurmd; they carry our marker in their environment.
        # slurmstepd ignores SIGTERM; these are disposable, so they get SIGKILL.
        kill(list(pids_with_environment(MARKER_VARIABLE, str(self.root))))
        self.munge.stop()

    def run(
        self, *argv: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a Slurm command (scontrol, sbatch, squeue, ...) against this cluster."""
        result = subprocess.run(
            list(argv), env=self.env, input=stdin, capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise SlurmError(
                f"{' '.join(argv)} exited {result.returncode}: "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return result

    def set_licenses(self, licenses: Mapping[str, int]) -> None:
        """Replace the cluster's local license totals (Licenses=) and make slurmctld reread them."""
        self.licenses = dict(licenses)
        self.conf_file.write_text(self.slurm_conf())
        self.run("scontrol", "reconfigure")

    def submit(
        self,
        script_or_command: str,
        *extra_args: str,
        licenses: Mapping[str, int] | None = None,
    ) -> int:
        """Submit a batch job and return its id.

        A text starting with `#!` is a job script (sent on stdin); anything else is a shell command
        wrapped with `--wrap`. Output goes to `job_dir/slurm-<id>.out`.
        """
        argv = [
            "sbatch",
            "--parsable",
            f"--chdir={self.job_dir}",
            f"--output={self.job_dir / 'slurm-%j.out'}",
        ]
        if licenses:
            argv.append(f"--licenses={license_spec(licenses)}")
        argv += extra_args
        if script_or_command.startswith("#!"):
            submitted = self.run(*argv, stdin=script_or_command)
        else:
            submitted = self.run(*argv, f"--wrap={script_or_command}")
        return int(submitted.stdout.strip().split(";")[0])

    def submit_held(self, *extra_args: str, licenses: Mapping[str, int] | None = None) -> HeldJob:
        """A job that runs until released: tests look at a job while it holds its licenses."""
        gate = self.job_dir / f"release-{uuid.uuid4().hex}"
        command = f"while [ ! -e {gate} ]; do sleep 0.1; done"
        return HeldJob(self.submit(command, *extra_args, licenses=licenses), gate)

    def cancel_all_jobs(self) -> None:
        """Cancel every job of this cluster: tests sharing one cluster start from an empty queue."""
        job_ids = self.run("squeue", "-h", "-o", "%i").stdout.split()
        if job_ids:
            self.run("scancel", *job_ids, check=False)
            wait_for(
                lambda: not self.run("squeue", "-h", "-o", "%i").stdout.strip(),
                START_TIMEOUT,
                "cancelled jobs to leave the queue",
            )

    def job_status(self, job_id: int) -> JobStatus | None:
        """State and reason of a job, or None once Slurm has forgotten it (after MinJobAge)."""
        shown = self.run("squeue", "-h", "-t", "all", "-j", str(job_id), "-o", "%T|%r", check=False)
        if shown.returncode != 0 or not shown.stdout.strip():
            return None
        state, reason = shown.stdout.strip().split("|", 1)
        return JobStatus(state, reason)

    def job_state(self, job_id: int) -> str | None:
        """RUNNING, PENDING, COMPLETED, ... or None once Slurm has forgotten the job."""
        status = self.job_status(job_id)
        return status.state if status else None

    def wait_for_job(self, job_id: int, *states: str, timeout: float = 30.0) -> JobStatus:
        """Poll until the job is in one of `states`; return its status then."""

        def reached() -> JobStatus | None:
            status = self.job_status(job_id)
            return status if status and status.state in states else None

        return wait_for(reached, timeout, f"job {job_id} to reach {'/'.join(states)}")

    def wait_for_reason(self, job_id: int, timeout: float = 10.0) -> str:
        """Why a job pends, once the scheduler has looked at it (a new job's reason is None)."""

        def evaluated() -> str | None:
            status = self.job_status(job_id)
            return status.reason if status and status.reason != "None" else None

        return wait_for(evaluated, timeout, f"job {job_id} to get a pending reason")

    def job_restarts(self, job_id: int) -> int:
        """How often Slurm requeued the job (e.g. after PrologSlurmctld refused it)."""
        shown = self.run("scontrol", "-o", "show", "job", str(job_id)).stdout
        fields = dict(word.split("=", 1) for word in shown.split() if "=" in word)
        return int(fields["Restarts"])

    def license_usage(self) -> dict[str, dict[str, int]]:
        """`scontrol show lic -o` as {name: {"Total", "Used", "Free", "Reserved": count}}."""
        usage: dict[str, dict[str, int]] = {}
        for line in self.run("scontrol", "show", "lic", "-o").stdout.splitlines():
            fields = dict(word.split("=", 1) for word in line.split() if "=" in word)
            if "LicenseName" in fields:
                usage[fields["LicenseName"]] = {
                    key: int(value) for key, value in fields.items() if value.isdigit()
                }
        return usage
