"""The agent's settings: `/etc/license-manager/agent.yaml` (LM_AGENT_CONFIG overrides the path).

Usage by every agent module::

    from agent.config import load_config, ConfigError
    config = load_config()          # AgentConfig; raises ConfigError (one line, names the key)
    config.api_url                  # "http://127.0.0.1:8000" (no trailing slash)
    config.tools.lmutil             # absolute path of a license-server or Slurm tool
    config.tool_path("flexlm")      # the tool that polls one server type
    config.slurm_license_name("abaqus", "abaqus", "flexlm")  # "abaqus.abaqus@flexlm"

Every key is declared once, below, as a field of AgentConfig (or ToolPaths for `tools:`) made by
`setting(kind, default, description, ...)`: its type, default, bounds and one-line description.
Adding a setting is adding one such field; tests/test_settings.py then checks that docs/agent.md
and the license_manager_agent role (defaults, argument specs, agent.yaml template) carry it.
`lm-agent` turns a ConfigError into one stderr line and exit code 2.
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


# Turns the YAML value of the key `name` into the field's value, or raises ConfigError.
Check = Callable[[str, Any, "Setting"], Any]


class Setting:
    """How one agent.yaml key is read: its kind (a check in KINDS, or a Check of its own for a
    structured value), bounds and purpose.

    `optional`: null is a value (the field's default is then usually None). `minimum` and
    `maximum` bound numbers (`seconds` are > 0 unless a minimum is given); `choices` lists the
    values of a `choice`; `key` is the YAML key when it is not the field's name. A plain class:
    the prolog builds one per key at import, and a dataclass would cost it more.
    """

    __slots__ = ("choices", "description", "key", "kind", "maximum", "minimum", "optional")

    def __init__(
        self,
        kind: str | Check,
        description: str,
        optional: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
        choices: tuple[str, ...] = (),
        key: str | None = None,
    ) -> None:
        self.kind = kind
        self.description = description
        self.optional = optional
        self.minimum = minimum
        self.maximum = maximum
        self.choices = choices
        self.key = key


def setting(
    kind: str | Check,
    default: Any = MISSING,
    description: str = "",
    *,
    optional: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] = (),
    key: str | None = None,
) -> Any:
    """A dataclass field that is one agent.yaml key (MISSING default: the key is required)."""
    if isinstance(kind, str) and kind not in KINDS:
        raise TypeError(f"unknown setting kind {kind!r} (known: {', '.join(KINDS)})")
    spec = Setting(kind, description, optional, minimum, maximum, choices, key)
    if isinstance(default, type):  # a section (a settings dataclass of its own)
        return field(default_factory=default, metadata={"setting": spec})
    return field(default=default, metadata={"setting": spec})


def _text(name: str, value: Any, spec: Setting) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name}: must be a non-empty string, got {value!r}")
    return value.strip()


def _path(name: str, value: Any, spec: Setting) -> str:
    value = _text(name, value, spec)
    # slurmctld runs hooks without PATH, so a bare command name would never be found.
    if not value.startswith("/"):
        raise ConfigError(f"{name}: must be an absolute path, got {value!r}")
    return value


def _url(name: str, value: Any, spec: Setting) -> str:
    value = _text(name, value, spec)
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise ConfigError(f"{name}: must be an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _choice(name: str, value: Any, spec: Setting) -> str:
    if value not in spec.choices:
        raise ConfigError(f"{name}: must be one of {', '.join(spec.choices)}, got {value!r}")
    return value


def _license_template(name: str, value: Any, spec: Setting) -> str:
    value = _text(name, value, spec)
    try:
        value.format(product="p", feature="f", type="t")
    except (KeyError, IndexError, ValueError) as error:
        raise ConfigError(
            f"{name}: may only use {{product}}, {{feature}} and {{type}}, got {value!r} ({error})"
        ) from None
    if "{product}" not in value or "{feature}" not in value:
        raise ConfigError(f"{name}: must contain {{product}} and {{feature}}, got {value!r}")
    return value


def _bounds(spec: Setting, lowest: float) -> str:
    low = lowest if spec.minimum is None else spec.minimum
    if spec.maximum is None:
        return f">= {low:g}"
    return f"from {low:g} to {spec.maximum:g}"


def _count(name: str, value: Any, spec: Setting) -> int:
    low = 1 if spec.minimum is None else spec.minimum
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (spec.maximum is not None and value > spec.maximum)
    ):
        raise ConfigError(f"{name}: must be a whole number {_bounds(spec, 1)}, got {value!r}")
    return value


def _seconds(name: str, value: Any, spec: Setting) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if spec.minimum is None and spec.maximum is None:
        if not number or value <= 0:
            raise ConfigError(f"{name}: must be a number of seconds > 0, got {value!r}")
        return float(value)
    if (
        not number
        or value < (spec.minimum or 0)
        or (spec.maximum is not None and value > spec.maximum)
    ):
        raise ConfigError(f"{name}: must be a number of seconds {_bounds(spec, 0)}, got {value!r}")
    return float(value)


def _section(name: str, value: Any, spec: Setting) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: must be a mapping of tool name to absolute path")
    return value


def _license_failures(name: str, value: Any, spec: Setting) -> LicenseFailureSettings:
    try:
        return parse_settings(value, name)
    except SettingError as error:
        raise ConfigError(str(error)) from None


# Setting kind -> the check that turns a YAML value into the field's value (or ConfigError).
KINDS: dict[str, Check] = {
    "text": _text,
    "path": _path,
    "url": _url,
    "choice": _choice,
    "license_template": _license_template,
    "count": _count,
    "seconds": _seconds,
    "section": _section,
}


def _tool(tool: str, directory: str = "/usr/local/bin") -> Any:
    return setting("path", f"{directory}/{tool}", f"{tool}'s absolute path", key=tool)


@dataclass(frozen=True)
class ToolPaths:
    """Absolute paths of the license-server tools and the Slurm commands (YAML section `tools`).

    A field is its tool's name (lm_common.facts.TOOL_BY_SERVER_TYPE), lowercased.
    """

    lmutil: str = _tool("lmutil")
    rlmutil: str = _tool("rlmutil")
    lstc_qrun: str = _tool("lstc_qrun")
    lmxendutil: str = _tool("lmxendutil")
    olixtool: str = _tool("olixtool")
    dslicsrv: str = _tool("DSLicSrv")
    scontrol: str = _tool("scontrol", "/usr/bin")
    squeue: str = _tool("squeue", "/usr/bin")

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

    api_url: str = setting(
        "url", description="Where the API answers (the backend's LM_PUBLIC_URL)."
    )
    client_id: str = setting(
        "text", description="The cluster's OAuth client id: its configurations' cluster_client_id."
    )
    # From the file, client_secret_file, or LM_AGENT_CLIENT_SECRET (see _client_secret).
    client_secret: str = setting("text", description="The OAuth client's secret.")
    oidc_issuer: str = setting(
        "url", "", "Token issuer ({issuer}/.well-known/openid-configuration); default: api_url."
    )
    oidc_audience: str | None = setting(
        "text", None, "`audience` of the token request, when the provider needs one.", optional=True
    )
    ca_file: str | None = setting(
        "path",
        None,
        "CA bundle for an https:// API or issuer (default: the system's).",
        optional=True,
    )
    http_timeout: float = setting(
        "seconds", 10.0, "Seconds to wait for an answer from the API or the token endpoint."
    )
    tools: ToolPaths = setting(  # noqa: RUF009 (setting() makes the field, a default_factory)
        "section", ToolPaths, "Absolute paths of the license-server tools and Slurm commands."
    )
    tool_timeout: float = setting(
        "seconds", 10.0, "Seconds a license-server tool may run before it is killed."
    )
    slurm_conf: str | None = setting(
        "path", None, "slurm.conf exported as SLURM_CONF to scontrol/squeue.", optional=True
    )
    reservation_name: str = setting(
        "text", "license_manager", "The license-only reservation the agent manages."
    )
    reservation_user: str = setting("text", "root", "The user the reservation is created for.")
    license_name_template: str = setting(
        "license_template",
        DEFAULT_LICENSE_NAME_TEMPLATE,
        "How a product.feature is named in Slurm's Licenses= ({product}, {feature}, {type}).",
    )
    stat_interval: int = setting("count", 60, "Seconds between reconciliations.")
    lock_file: str = setting(
        "path", "/run/lock/license-manager-agent.lock", "Makes overlapping reconciles exit."
    )
    state_file: str = setting(
        "path",
        "/var/cache/license-manager/reconcile-state.json",
        "What the last successful cycle knew: lets a cycle guard Slurm while the API is down.",
    )
    log_file: str | None = setting(
        "path", "/var/log/license-manager/agent.log", "Log file (null: stderr only).", optional=True
    )
    log_level: str = setting("choice", "INFO", "Least severe level logged.", choices=LOG_LEVELS)
    token_cache_dir: str = setting(
        "path", "/var/cache/license-manager", "Where each OS user's access token is cached."
    )
    prolog_api_unreachable: str = setting(
        "choice",
        "requeue",
        "What the prolog does without an answer from the API: requeue or allow the job.",
        choices=PROLOG_POLICIES,
    )
    license_failures: LicenseFailureSettings = setting(  # noqa: RUF009 (a default_factory)
        _license_failures,
        LicenseFailureSettings,
        "Requeueing jobs that died for lack of a license (agent.failure_settings).",
    )

    @property
    def state_dir(self) -> str:
        """The agent's state directory, state_file's: outputs the parsers did not understand
        (unparsable/) and the Slurm totals already warned about live there too."""
        return os.path.dirname(self.state_file)

    def tool_path(self, server_type: str) -> str:
        """The tool that reads a license server of this type (KeyError for unknown types)."""
        return self.tools.for_server_type(server_type)

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
    return AgentConfig(**_build(AgentConfig, raw, prefix=""))


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
    """Check every key of one YAML mapping against the settings of `cls`; return field values."""
    by_key = settings_of(cls)
    _reject_unknown_keys(cls, raw, prefix)
    values: dict[str, Any] = {}
    for key, spec in by_key.items():
        name = f"{prefix}{key}"
        setting_ = spec.metadata["setting"]
        required = spec.default is MISSING and spec.default_factory is MISSING
        if key not in raw or (raw[key] is None and required):
            if required:
                raise ConfigError(f"{name}: required")
            continue
        value = raw[key]
        if value is None and setting_.optional:
            values[spec.name] = None
            continue
        if value is None and setting_.kind == "section":
            value = {}
        check = KINDS[setting_.kind] if isinstance(setting_.kind, str) else setting_.kind
        value = check(name, value, setting_)
        if setting_.kind == "section":
            value = spec.default_factory(**_build(spec.default_factory, value, f"{name}."))
        values[spec.name] = value
    return values


def settings_of(cls: type) -> dict[str, Any]:
    """The YAML key of every setting (dataclass field) of `cls`, in declaration order."""
    return {spec.metadata["setting"].key or spec.name: spec for spec in fields(cls)}


def _reject_unknown_keys(
    cls: type, raw: Mapping[str, Any], prefix: str, also_known: tuple[str, ...] = ()
) -> None:
    known = sorted([*settings_of(cls), *also_known])
    unknown = sorted(str(key) for key in raw if key not in known)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known: {', '.join(known)})")
