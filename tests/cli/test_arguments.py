"""Bad command lines stop in argparse with a usage error (exit 2) before any request is sent."""

from __future__ import annotations

import pytest

from tests.cli.conftest import run_cli

# A closed port: if a request were sent anyway, the exit code would be 1, not 2.
NOWHERE = {"LM_API_URL": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("args", "env", "complaint"),
    [
        (["products", "list"], {}, "no API address: give --url or set LM_API_URL"),
        (["--url", "localhost:8000", "health"], {}, "is not an http:// or https:// address"),
        (["products", "update", "1"], NOWHERE, "update needs at least one of --name"),
        (["products", "show", "0"], NOWHERE, "0 must be >= 1"),
        (["products", "show", "abc"], NOWHERE, "'abc' is not a whole number"),
        (["products", "create"], NOWHERE, "the following arguments are required: --name"),
        (["products", "frobnicate"], NOWHERE, "invalid choice: 'frobnicate'"),
        (["jobs", "create"], NOWHERE, "invalid choice: 'create'"),
        (["jobs", "get-one"], NOWHERE, "one of the arguments --id ID --slurm-job-id is required"),
        (["jobs", "show", "1", "--slurm-job-id", "7"], NOWHERE, "not allowed with argument"),
        (["products", "get-one", "--id", "1", "2"], NOWHERE, "not allowed with argument --id"),
        (["products", "delete", "--id", "x"], NOWHERE, "'x' is not a whole number"),
        (
            ["configurations", "create", "--name", "a", "--cluster-client-id", "c"],
            NOWHERE,
            "required: --grace-time, --license-server-type",
        ),
        (["products", "list", "--page", "0"], NOWHERE, "0 must be >= 1"),
        (["products", "list", "--sort-order", "up"], NOWHERE, "invalid choice: 'up'"),
        (
            ["license-servers", "create", "--config-id", "1", "--host", "h", "--port", "70000"],
            NOWHERE,
            "70000 must be between 1 and 65535",
        ),
        (
            ["configurations", "update", "1", "--grace-time", "-5"],
            NOWHERE,
            "-5 must be >= 0",
        ),
        (["configurations", "update", "1", "--type", "nope"], NOWHERE, "invalid choice: 'nope'"),
        (
            ["products", "list", "--client-id", "abc"],
            NOWHERE,
            "--client-id and --client-secret go together",
        ),
    ],
)
def test_bad_arguments_are_usage_errors(args: list[str], env: dict[str, str], complaint: str):
    result = run_cli(*args, env=env)
    assert result.returncode == 2, result.stderr
    assert complaint in result.stderr
    assert "usage: lm-cli" in result.stderr
    assert "Traceback" not in result.stderr


def test_options_after_the_command_override_those_before_it():
    result = run_cli("--url", "http://127.0.0.1:9", "health", "--url", "http://127.0.0.1:8")
    assert result.returncode == 1
    assert "cannot reach the API at http://127.0.0.1:8" in result.stderr


def test_options_before_the_command_survive_the_subcommand_defaults():
    result = run_cli("--url", "http://127.0.0.1:9", "products", "list")
    assert "cannot reach the API at http://127.0.0.1:9" in result.stderr


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("lm-cli conf", "configurations "),
        ("lm-cli configurations get", "get-one "),
        ("lm-cli configurations create --lic", "--license-server-type "),
        ("lm-cli log", "login logout"),
    ],
)
def test_shell_completion_offers_commands_and_options(tmp_path, line: str, expected: str):
    """What bash/zsh get from `eval "$(register-python-argcomplete lm-cli)"` (argcomplete)."""
    answer = tmp_path / "completions"
    completion = {
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": " ",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
    }
    result = run_cli(env=completion)
    assert result.returncode == 0, result.stderr
    assert answer.read_text().strip() == expected.strip()
