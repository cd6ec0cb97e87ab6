"""The agent's settings: `/etc/license-manager/agent.yaml` (LM_AGENT_CONFIG overrides the path).

Usage by every agent module::

    from agent.config import load_config, ConfigError
    config = load_config()          # AgentConfig; raises ConfigError (one line, names the key)
    config.api_url                  # "http://127.0.0.1:8000" (no trailing slash)
    config.tools.lmutil             # absolute path of a license-server or Slurm tool
    config.tool_path("flexlm")      # the tool that polls one server type
    config.slurm_env()              # environment for scontrol/squeue (SLURM_CONF when set)
    config.slurm_license_name("abaqus", "abaqus", "flexlm")  # "abaqus.abaqus@flexlm"

`lm-agent` turns a ConfigError into one stderr line and exit code 2. docs/agent.md is the reference
of every key; the dataclass fields below are the keys, with their defaults.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from agent.failure_settings import LicenseFailureSettings, SettingError, parse_settings
from lm_common.facts import DEFAULT_LICENSE_NAME_TEMPLATE, TOOL_BY_SERVER_TYPE, slurm_license_name

DEFAULT_CONFIG_PATH = "/etc/license-manager/agent.yaml"
CONFIG_PATH_ENV = "LM_AGENT_CONFIG"
CLIENT_SECRET_ENV = "LM_AGENT_CLIENT_SECRET"
PROLOG_POLICIES = ("requeue", "allow")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(ValueError):
    """The configuration cannot be used; the message is one line naming the key at fault."""


def _absolute_path(key: str, value: str) -> None:
    # slurmctld runs hooks without PATH, so a bare command name would never be found.
    if not value.startswith("/"):
        raise ConfigError(f"{key}: must be an absolute path, got {value!r}")


def _one_of(choices: tuple[str, ...]) -> Callable[[str, str], None]:
    def check(key: str, value: str) -> None:
        if value not in choices:
            raise ConfigError(f"{key}: must be one of {', '.join(choices)}, got {value!r}")

    return check


def _http_url(key: str, value: str) -> None:
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise ConfigError(f"{key}: must be an http:// or https:// URL, got {value!r}")


def _license_template(key: str, value: str) -> None:
    try:
        value.format(product="p", feature="f", type="t")
    except (KeyError, IndexError, ValueError) as error:
        raise ConfigError(
            f"{key}: may only use {{product}}, {{feature}} and {{type}}, got {value!r} ({error})"
        ) from None
    if "{product}" not in value or "{feature}" not in value:
        raise ConfigError(f"{key}: must contain {{product}} and {{feature}}, got {value!r}")


def _path_field(default: str | None) -> Any:
    return field(default=default, metadata={"check": _absolute_path})


def _tool(default: str, key: str | None = None) -> Any:
    metadata: dict[str, Any] = {"check": _absolute_path}
    if key:
        metadata["key"] = key
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ToolPaths:
    """Absolute paths of the license-server tools and the Slurm commands (YAML section `tools`).

    A field is its tool's name (lm_common.facts.TOOL_BY_SERVER_TYPE), lowercased.
    """

    lmutil: str = _tool("/usr/local/bin/lmutil")
    rlmutil: str = _tool("/usr/local/bin/rlmutil")
    lstc_qrun: str = _tool("/usr/local/bin/lstc_qrun")
    lmxendutil: str = _tool("/usr/local/bin/lmxendutil")
    olixtool: str = _tool("/usr/local/bin/olixtool")
    dslicsrv: str = _tool("/usr/local/bin/DSLicSrv", key="DSLicSrv")
    scontrol: str = _tool("/usr/bin/scontrol")
    squeue: str = _tool("/usr/bin/squeue")

    @classmethod
    def in_directory(cls, directory: str | Path, scontrol: str, squeue: str) -> ToolPaths:
        """Every license-server tool under its own name in `directory` (fake tools, tests)."""
        return cls(
            **{tool.lower(): f"{directory}/{tool}" for tool in TOOL_BY_SERVER_TYPE.values()},
            scontrol=scontrol,
            squeue=squeue,
        )

    def for_server_type(self, server_type: str) -> str:
        """The tool that reads a license server of this type (KeyError for unknown types)."""
        return getattr(self, TOOL_BY_SERVER_TYPE[server_type].lower())


@dataclass(frozen=True)
class AgentConfig:
    """Everything `lm-agent` needs; built and validated by `load_config`."""

    api_url: str = field(metadata={"check": _http_url})
    client_id: str
    client_secret: str  # from the file, client_secret_file, or LM_AGENT_CLIENT_SECRET
    # Where the token endpoint is discovered ({issuer}/.well-known/openid-configuration).
    oidc_issuer: str = field(default="", metadata={"check": _http_url})
    oidc_audience: str | None = None
    ca_file: str | None = _path_field(None)
    http_timeout: float = 10.0
    tools: ToolPaths = field(default_factory=ToolPaths)
    tool_timeout: float = 10.0
    slurm_conf: str | None = _path_field(None)
    reservation_name: str = "license_manager"
    reservation_user: str = "root"
    license_name_template: str = field(
        default=DEFAULT_LICENSE_NAME_TEMPLATE, metadata={"check": _license_template}
    )
    stat_interval: int = 60
    lock_file: str = _path_field("/run/lock/license-manager-agent.lock")
    # What the last successful cycle knew: lets a cycle guard Slurm while the API is down.
    state_file: str = _path_field("/var/cache/license-manager/reconcile-state.json")
    log_file: str | None = _path_field("/var/log/license-manager/agent.log")
    log_level: str = field(default="INFO", metadata={"check": _one_of(LOG_LEVELS)})
    token_cache_dir: str = _path_field("/var/cache/license-manager")
    prolog_api_unreachable: str = field(
        default="requeue", metadata={"check": _one_of(PROLOG_POLICIES)}
    )
    # Requeueing jobs that died for lack of a license (agent.failure_settings, docs/agent.md).
    license_failures: LicenseFailureSettings = field(default_factory=LicenseFailureSettings)
    source: str = field(default="", metadata={"internal": True})  # the file it came from

    @property
    def state_dir(self) -> str:
        """The agent's state directory, state_file's: outputs the parsers did not understand
        (unparsable/) and the Slurm totals already warned about live there too."""
        return os.path.dirname(self.state_file)

    def tool_path(self, server_type: str) -> str:
        """The tool that reads a license server of this type (KeyError for unknown types)."""
        return self.tools.for_server_type(server_type)

    def slurm_env(self) -> dict[str, str]:
        """Environment for Slurm commands: ours plus SLURM_CONF when a test cluster needs it."""
        env = dict(os.environ)
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return env

    def slurm_license_name(self, product: str, feature: str, server_type: str) -> str:
        """The Slurm license that stands for one product.feature (license_name_template)."""
        return slurm_license_name(product, feature, server_type, self.license_name_template)


def config_path() -> str:
    return os.environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH


def load_config(path: str | None = None) -> AgentConfig:
    """Read, validate and complete the YAML file; ConfigError names the first bad key."""
    path = path or config_path()
    try:
        return _load(path)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _load(path: str) -> AgentConfig:
    raw = dict(_read_yaml(path))
    _reject_unknown_keys(AgentConfig, raw, prefix="", also_known=("client_secret_file",))
    raw["client_secret"] = _client_secret(raw)
    if raw.get("oidc_issuer") is None:
        raw["oidc_issuer"] = raw.get("api_url")
    values = _build(AgentConfig, raw, prefix="")
    values["api_url"] = values["api_url"].rstrip("/")
    values["oidc_issuer"] = values["oidc_issuer"].rstrip("/")
    return AgentConfig(**values, source=path)


def _read_yaml(path: str) -> Mapping[str, Any]:
    # PyYAML is imported here, not at module level: hooks without licenses never load it.
    import yaml

    try:
        text = Path(path).read_bytes().decode("utf-8")
        document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as error:
        raise ConfigError(f"cannot read the file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 text: {_undecodable(error)}") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        position = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"invalid YAML{position}: {problem}") from None
    if not isinstance(document, dict):
        raise ConfigError("the file must be a YAML mapping of settings (key: value)")
    return document


def _undecodable(error: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8 (the whole file was decoded at once, so offsets are exact)."""
    line = error.object[: error.start].count(b"\n") + 1
    return f"byte 0x{error.object[error.start]:02x} on line {line} (offset {error.start})"


def _client_secret(raw: dict[str, Any]) -> str:
    """The secret from LM_AGENT_CLIENT_SECRET, else `client_secret`, else `client_secret_file`."""
    from_env = os.environ.get(CLIENT_SECRET_ENV)
    secret_file = raw.pop("client_secret_file", None)
    if "client_secret" in raw and secret_file is not None:
        raise ConfigError("client_secret: give either client_secret or client_secret_file")
    if from_env:
        return from_env
    if "client_secret" in raw:
        return raw["client_secret"]
    if secret_file is None:
        raise ConfigError(
            f"client_secret: required (or client_secret_file, or the {CLIENT_SECRET_ENV} variable)"
        )
    if not isinstance(secret_file, str) or not secret_file.startswith("/"):
        raise ConfigError(f"client_secret_file: must be an absolute path, got {secret_file!r}")
    try:
        secret = Path(secret_file).read_bytes().decode("utf-8").strip()
    except OSError as error:
        raise ConfigError(
            f"client_secret_file: cannot read {secret_file}: {error.strerror}"
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"client_secret_file: {secret_file} is not UTF-8 text: {_undecodable(error)}"
        ) from None
    if not secret:
        raise ConfigError(f"client_secret_file: {secret_file} is empty")
    return secret


def _build(cls: type, raw: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Check every key of one YAML mapping against the dataclass `cls`; return its field values."""
    by_key = _fields_by_key(cls)
    _reject_unknown_keys(cls, raw, prefix)
    values: dict[str, Any] = {}
    for key, spec in by_key.items():
        name = f"{prefix}{key}"
        if key not in raw or (raw[key] is None and spec.default is MISSING):
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise ConfigError(f"{name}: required")
            continue
        if spec.type == "ToolPaths":
            section = raw[key] if raw[key] is not None else {}
            if not isinstance(section, dict):
                raise ConfigError(f"{name}: must be a mapping of tool name to absolute path")
            values[spec.name] = ToolPaths(**_build(ToolPaths, section, prefix=f"{name}."))
            continue
        value = _TYPE_CHECKS[spec.type](name, raw[key])
        if value is not None and "check" in spec.metadata:
            spec.metadata["check"](name, value)
        values[spec.name] = value
    return values


def _fields_by_key(cls: type) -> dict[str, Any]:
    """The YAML key of every user-settable field of a settings dataclass."""
    return {
        spec.metadata.get("key", spec.name): spec
        for spec in fields(cls)
        if not spec.metadata.get("internal")
    }


def _reject_unknown_keys(
    cls: type, raw: Mapping[str, Any], prefix: str, also_known: tuple[str, ...] = ()
) -> None:
    known = sorted([*_fields_by_key(cls), *also_known])
    unknown = sorted(str(key) for key in raw if key not in known)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known: {', '.join(known)})")


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name}: must be a non-empty string, got {value!r}")
    return value.strip()


def _optional_text(name: str, value: Any) -> str | None:
    return None if value is None else _text(name, value)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: must be a whole number >= 1, got {value!r}")
    return value


def _positive_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{name}: must be a number of seconds > 0, got {value!r}")
    return float(value)


def _license_failures(name: str, value: Any) -> LicenseFailureSettings:
    try:
        return parse_settings(value, name)
    except SettingError as error:
        raise ConfigError(str(error)) from None


_TYPE_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "str": _text,
    "str | None": _optional_text,
    "int": _positive_int,
    "float": _positive_seconds,
    "LicenseFailureSettings": _license_failures,
}
