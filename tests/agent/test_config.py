"""agent.yaml validation: every mistake is one stderr line naming the key, and exit code 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from agent.config import AgentConfig, load_config
from agent.reconcile import slurm_of
from tests.agent.conftest import WriteConfig, hook, job_env, run_agent
from tests.live_api import LiveApi

DOCS = Path(__file__).resolve().parents[2] / "docs" / "agent.md"
VALID = "api_url: http://127.0.0.1:8000\nclient_id: cluster-a\nclient_secret: s3cret\n"


def config_error(tmp_path: Path, text: str, *arguments: str, **env: str) -> str:
    """Run `lm-agent` on an agent.yaml holding `text`; return its one stderr line (exit 2)."""
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    result = run_agent(*(arguments or ("report",)), env={"LM_AGENT_CONFIG": str(path), **env})
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VALID + "api_uri: http://x\n", "api_uri: unknown key (known: api_url, ca_file"),
        (VALID + "stat_interval: often\n", "stat_interval: must be a whole number >= 1"),
        (VALID + "stat_interval: 0\n", "stat_interval: must be a whole number >= 1, got 0"),
        (VALID + "http_timeout: true\n", "http_timeout: must be a number of seconds > 0"),
        (VALID + "tools:\n  lmutil: 5\n", "tools.lmutil: must be a non-empty string, got 5"),
        (VALID + "tools:\n  scontrol: scontrol\n", "tools.scontrol: must be an absolute path"),
        (VALID + "tools:\n  lmstat: /x\n", "tools.lmstat: unknown key"),
        (VALID + "tools: [lmutil]\n", "tools: must be a mapping of tool name to absolute path"),
        (VALID + "prolog_api_unreachable: maybe\n", "must be one of requeue, allow, got 'maybe'"),
        (VALID + "license_name_template: '{name}'\n", "license_name_template: may only use"),
        (VALID + "license_name_template: '{product}'\n", "must contain {product} and {feature}"),
        (VALID + "log_level: LOUD\n", "log_level: must be one of DEBUG, INFO, WARNING, ERROR"),
        (VALID.replace("http://127.0.0.1:8000", "127.0.0.1:8000"), "api_url: must be an http://"),
        ("client_id: a\nclient_secret: b\n", "api_url: required"),
        ("api_url: http://x\nclient_secret: b\n", "client_id: required"),
        ("api_url: http://x\nclient_id: a\n", "client_secret: required (or client_secret_file"),
        (VALID + "client_secret_file: /etc/x\n", "give either client_secret or client_secret_file"),
        (
            VALID + "  bad: indent\n",
            "invalid YAML at line 4, column 6: mapping values are not allowed",
        ),
        ("- api_url\n", "the file must be a YAML mapping of settings"),
        ("", "the file must be a YAML mapping of settings"),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    line = config_error(tmp_path, text)

    assert line.startswith(f"lm-agent report: configuration error: {tmp_path / 'agent.yaml'}: ")
    assert expected in line


def test_a_missing_or_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    text = "api_url: http://x\nclient_id: a\nclient_secret_file: /nonexistent/secret\n"

    line = config_error(tmp_path, text)

    assert "client_secret_file: cannot read /nonexistent/secret: No such file or directory" in line


def test_bytes_that_are_not_utf8_are_one_config_error_line_for_every_command(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agent.yaml"
    latin1 = VALID.encode() + "reservation_name: réservation\n".encode("latin-1")
    path.write_bytes(latin1)
    env = {"LM_AGENT_CONFIG": str(path), "SLURM_JOB_ID": "1", "SLURM_JOB_LICENSES": "a.b:1"}
    where = f"byte 0xe9 on line 4 (offset {latin1.index(0xE9)})"

    # The epilog only logs: slurmctld ignores its exit code, and it must never block a node.
    for command, exit_code in (("prolog", 2), ("reconcile", 2), ("report", 2), ("epilog", 0)):
        result = run_agent(command, env=env)
        assert (result.returncode, result.stdout) == (exit_code, "")
        assert result.stderr == (
            f"lm-agent {command}: configuration error: {path}: not UTF-8 text: {where}\n"
        )


def test_a_secret_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"\xffs3cret\n")
    text = f"api_url: http://x\nclient_id: a\nclient_secret_file: {secret}\n"

    line = config_error(tmp_path, text)

    assert line.endswith(
        f"client_secret_file: {secret} is not UTF-8 text: byte 0xff on line 1 (offset 0)"
    )


def test_a_missing_config_file_is_reported_for_prolog_and_reconcile(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.yaml")
    env = {"LM_AGENT_CONFIG": missing, "SLURM_JOB_ID": "1", "SLURM_JOB_LICENSES": "a.b:1"}

    for command in ("prolog", "reconcile"):
        result = run_agent(command, env=env)
        assert result.returncode == 2
        assert result.stderr == (
            f"lm-agent {command}: configuration error: {missing}: "
            "cannot read the file: No such file or directory\n"
        )


def test_the_config_option_overrides_the_environment(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.yaml"
    chosen.write_text(VALID + "stat_interval: -1\n")

    result = run_agent("--config", str(chosen), "report", env={"LM_AGENT_CONFIG": "/nonexistent"})

    assert result.returncode == 2
    assert f"{chosen}: stat_interval: must be a whole number" in result.stderr


def test_defaults_fill_everything_not_given(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(VALID.replace("8000", "8000/"))

    config = load_config(str(path))

    assert config.api_url == config.oidc_issuer == "http://127.0.0.1:8000"
    assert config.prolog_api_unreachable == "requeue"
    assert config.reservation_name == "license_manager"
    assert config.reservation_user == "root"
    assert config.tool_path("flexlm") == "/usr/local/bin/lmutil"
    assert config.tools.scontrol == "/usr/bin/scontrol"
    assert config.slurm_license_name("abaqus", "abaqus", "flexlm") == "abaqus.abaqus@flexlm"


def test_the_secret_comes_from_the_environment_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    path = tmp_path / "agent.yaml"
    path.write_text(f"api_url: http://x\nclient_id: a\nclient_secret_file: {secret_file}\n")

    assert load_config(str(path)).client_secret == "from-file"
    monkeypatch.setenv("LM_AGENT_CLIENT_SECRET", "from-env")
    assert load_config(str(path)).client_secret == "from-env"


def test_slurm_conf_is_exported_to_slurm_commands(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(VALID + "slurm_conf: /etc/slurm-test/slurm.conf\n")

    slurm = slurm_of(load_config(str(path)))

    assert slurm.environment["SLURM_CONF"] == "/etc/slurm-test/slurm.conf"


@pytest.mark.parametrize("source", ["env", "file"])
def test_a_secret_kept_out_of_agent_yaml_gets_a_token(
    pool: LiveApi,
    agent_yaml: WriteConfig,
    cluster_client: dict[str, str],
    tmp_path: Path,
    source: str,
) -> None:
    secret_file = tmp_path / "client_secret"
    secret_file.write_text(cluster_client["client_secret"] + "\n")
    secret_file.chmod(0o600)
    config = agent_yaml()
    settings = yaml.safe_load(config.read_text())
    del settings["client_secret"]
    env = job_env(config, "201", "abaqus.abaqus@flexlm:1")
    if source == "env":
        env["LM_AGENT_CLIENT_SECRET"] = cluster_client["client_secret"]
    else:
        settings["client_secret_file"] = str(secret_file)
    config.write_text(yaml.safe_dump(settings))

    code, log = hook("prolog", env, tmp_path)

    assert code == 0
    assert "job 201 granted" in log


def test_the_documented_example_is_a_valid_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LM_AGENT_CLIENT_SECRET", "the example's secret file is not on this host")
    example = re.search(r"```yaml\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert example, "docs/agent.md has a ```yaml example"
    path = tmp_path / "agent.yaml"
    path.write_text(example.group(1))

    config = load_config(str(path))

    assert isinstance(config, AgentConfig)
    documented = set(yaml.safe_load(example.group(1)))
    settable = set(AgentConfig.__dataclass_fields__) - {"client_secret"}
    assert settable | {"client_secret_file"} == documented, "the example shows every setting"
    assert config.tools.dslicsrv.endswith("/DSLicSrv")
