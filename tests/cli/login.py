"""`lm-cli login` run in the background as a person runs it, and its printed instructions."""

from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass, field

from devstack.processes import console_script
from tests.cli.conftest import CliResult, cli_environment

PROMPT_TIMEOUT = 30


@dataclass
class LoginProcess:
    """`lm-cli login` waiting in the background; `wait()` once the browser side answered."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    verification_uri: str = ""
    user_code: str = ""
    complete_uri: str = ""

    @classmethod
    def start(cls, *args: str, env: dict[str, str]) -> LoginProcess:
        process = subprocess.Popen(
            [console_script("lm-cli"), *args, "login"],
            env=cli_environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        login = cls(process)
        login._read_prompt()
        return login

    def _read_prompt(self) -> None:
        """Read stdout until the code line, with a deadline (lm-cli may fail before it)."""
        done = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("Waiting for your approval"):
                    break
            done.set()

        threading.Thread(target=read, daemon=True).start()
        done.wait(PROMPT_TIMEOUT)
        text = "\n".join(self.lines)
        uri = re.search(r"open this address in a browser:\n  (\S+)", text)
        code = re.search(r"and enter the code: (\S+)", text)
        complete = re.search(r"\(or open (\S+)\)", text)
        if not (uri and code):
            result = self.wait()
            raise AssertionError(f"no login prompt: {result}")
        self.verification_uri, self.user_code = uri.group(1), code.group(1)
        self.complete_uri = complete.group(1) if complete else ""

    def wait(self, timeout: float = 60) -> CliResult:
        rest, errors = self.process.communicate(timeout=timeout)
        stdout = "\n".join(self.lines) + ("\n" if self.lines else "") + rest
        return CliResult(self.process.returncode, stdout, errors)
