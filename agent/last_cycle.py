"""What the last successful reconcile cycle knew, kept on disk for cycles without the API.

When the API cannot be reached, reconcile still has to guard Slurm: it needs the configurations
to poll, the bookings it last saw, and what it held back then and why (docs/architecture.md,
"Degraded mode"). The file is written after every successful cycle and only read when the API
fails; a missing or unreadable file means there is nothing to fall back on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("agent.reconcile")

FORMAT_VERSION = 1


@dataclass(frozen=True)
class HeldBack:
    """One Slurm license at the last successful cycle: the reservation's size and the server's
    usage it was computed from (None when the server could not be read)."""

    reserve: int
    server_used: int | None


@dataclass
class LastCycle:
    """The configurations (with each feature's `booked` and `reserved`) of the last successful
    cycle, what the last cycle (with or without the API) held back per license, and
    `degraded_since` once cycles have run without the API."""

    saved_at: str
    configurations: list[dict[str, Any]]
    licenses: dict[str, HeldBack]
    degraded_since: str | None = None
    path: Path | None = field(default=None, compare=False)

    @classmethod
    def record(
        cls,
        path: str | Path,
        configurations: Sequence[Mapping[str, Any]],
        licenses: Mapping[str, HeldBack],
    ) -> LastCycle:
        """A successful cycle's knowledge, written to `path` (a write failure is only logged)."""
        cycle = cls(
            saved_at=datetime.now(UTC).isoformat(timespec="seconds"),
            configurations=[dict(configuration) for configuration in configurations],
            licenses=dict(licenses),
            path=Path(path),
        )
        cycle.save()
        return cycle

    @classmethod
    def load(cls, path: str | Path) -> LastCycle | None:
        """The last successful cycle, or None when there is no usable file."""
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
            if document.get("version") != FORMAT_VERSION:
                return None
            return cls(
                saved_at=str(document["saved_at"]),
                configurations=list(document["configurations"]),
                licenses={
                    name: HeldBack(int(held["reserve"]), held["server_used"])
                    for name, held in document["licenses"].items()
                },
                degraded_since=document.get("degraded_since"),
                path=Path(path),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("last cycle's state %s unusable, ignored: %s", path, error)
            return None

    def record_degraded(self, licenses: Mapping[str, HeldBack]) -> None:
        """A cycle without the API held `licenses` back: the next one starts from there.

        Configurations and bookings stay those of the last successful cycle: nothing newer
        is known about them. `degraded_since` notes when such cycles began.
        """
        if self.degraded_since is None:
            self.degraded_since = datetime.now(UTC).isoformat(timespec="seconds")
        self.licenses.update(licenses)
        self.save()

    def save(self) -> None:
        """Replace the file atomically: a cycle killed meanwhile leaves the previous one."""
        if self.path is None:
            return
        document = {
            "version": FORMAT_VERSION,
            "saved_at": self.saved_at,
            "degraded_since": self.degraded_since,
            "configurations": self.configurations,
            "licenses": {
                name: {"reserve": held.reserve, "server_used": held.server_used}
                for name, held in self.licenses.items()
            },
        }
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(document), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            log.warning(
                "cannot write %s (%s): a cycle without the API could not guard Slurm",
                self.path,
                error.strerror,
            )
