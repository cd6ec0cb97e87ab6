"""Docs and Ansible roles say what the settings' declarations say (agent.config, backend.settings).

A setting is declared once, in code. The files people read or deploy with cannot import it, so
each test here names the file and the line a new or changed setting still needs.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import AgentConfig, Setting, ToolPaths, settings_of
from backend.settings import environment

ROOT = Path(__file__).resolve().parent.parent
AGENT_ROLE = ROOT / "roles" / "license_manager_agent"
BACKEND_ROLE = ROOT / "roles" / "license_manager_backend"
AGENT_PREFIX = "license_manager_agent_"
BACKEND_PREFIX = "license_manager_backend_"

# The role handles the secret itself (client_secret_file); the docs' example shows sample values
# for these keys rather than their defaults; the role chooses its own value for these, and why.
AGENT_KEYS_NOT_IN_ROLE = {"client_secret": "the role writes client_secret_file"}
AGENT_DOC_EXAMPLES = {"api_url", "client_id", "oidc_issuer"}
AGENT_ROLE_CHOOSES = {
    "api_url": "the URL of the backend host in the same run",
    "client_id": "the host's name",
    "lock_file": "a directory the agent's user owns (/run/lock is root's on Debian 12)",
}
BACKEND_ROLE_CHOOSES = {
    "database_url": "the role's own local database",
    "public_url": "the host's FQDN",
}
# Ansible argument spec types that can hold each kind of agent setting.
ARGUMENT_TYPES = {
    "text": {"str"},
    "url": {"str"},
    "path": {"path", "str"},
    "choice": {"str"},
    "license_template": {"str"},
    "count": {"int"},
    "seconds": {"float", "int"},
    "section": {"dict"},
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def argument_specs(role: Path) -> dict[str, Any]:
    return load_yaml(role / "meta/argument_specs.yml")["argument_specs"]["main"]["options"]


def agent_settings() -> list[tuple[str, Setting, Any]]:
    """(YAML key, declaration, default or MISSING) of every top-level agent setting."""
    result = []
    for key, spec in settings_of(AgentConfig).items():
        default = spec.default
        if spec.default_factory is not MISSING:
            default = spec.default_factory()
        result.append((key, spec.metadata["setting"], default))
    return result


def as_role_value(default: Any) -> Any:
    """How the role writes a default: null as "", a section as its mapping of keys."""
    if default is None:
        return ""
    if isinstance(default, ToolPaths):
        return {key: getattr(default, spec.name) for key, spec in settings_of(ToolPaths).items()}
    return default


def documented_agent_yaml() -> dict[str, Any]:
    example = re.search(r"```yaml\n(.*?)```", (ROOT / "docs/agent.md").read_text(), re.DOTALL)
    assert example, "docs/agent.md has a ```yaml example of every setting"
    return yaml.safe_load(example.group(1))


def test_agent_settings_are_all_described() -> None:
    undescribed = [key for key, setting, _ in agent_settings() if not setting.description]
    undescribed += [
        f"tools.{key}" for key, spec in settings_of(ToolPaths).items()
        if not spec.metadata["setting"].description
    ]  # fmt: skip
    assert undescribed == []


def test_docs_show_every_agent_setting_with_its_default() -> None:
    documented = documented_agent_yaml()
    for key, setting, default in agent_settings():
        shown = "client_secret_file" if key == "client_secret" else key
        assert shown in documented, f"docs/agent.md: the yaml example lacks `{shown}:`"
        # A structured setting (a Check of its own) is documented by example, not compared.
        structured = not isinstance(setting.kind, str)
        if key not in AGENT_DOC_EXAMPLES and default is not MISSING and not structured:
            expected = as_role_value(default) if isinstance(default, ToolPaths) else default
            assert documented[key] == expected, f"docs/agent.md: `{key}:` default is {default!r}"


@pytest.mark.parametrize("key", [key for key, _, _ in agent_settings()])
def test_agent_role_sets_every_agent_setting(key: str) -> None:
    if key in AGENT_KEYS_NOT_IN_ROLE:
        return
    setting, default = next((s, d) for k, s, d in agent_settings() if k == key)
    variable = AGENT_PREFIX + key
    defaults = load_yaml(AGENT_ROLE / "defaults/main.yml")
    assert variable in defaults, f"{AGENT_ROLE}/defaults/main.yml lacks {variable} (and a comment)"
    if key not in AGENT_ROLE_CHOOSES and isinstance(setting.kind, str):
        assert defaults[variable] == as_role_value(default), (
            f"{AGENT_ROLE}/defaults/main.yml: {variable} should default to the agent's "
            f"{as_role_value(default)!r}"
        )
    option = argument_specs(AGENT_ROLE).get(variable)
    assert option, f"{AGENT_ROLE}/meta/argument_specs.yml lacks {variable}"
    kind = setting.kind if isinstance(setting.kind, str) else "section"
    assert option["type"] in ARGUMENT_TYPES[kind], f"{variable}: type {option['type']}"
    if setting.choices:
        assert option.get("choices") == list(setting.choices), f"{variable}: choices"
    template = (AGENT_ROLE / "templates/agent.yaml.j2").read_text()
    line = re.search(rf"^{key}:(.*)$", template, re.MULTILINE)
    assert line, f"{AGENT_ROLE}/templates/agent.yaml.j2 lacks `{key}: ...`"
    assert re.search(rf"\b{AGENT_PREFIX}(effective_)?{key}\b", template), (
        f"agent.yaml.j2 does not write {variable}"
    )


def test_agent_role_names_every_tool() -> None:
    tools = argument_specs(AGENT_ROLE)[AGENT_PREFIX + "tools"]["options"]
    assert list(tools) == list(settings_of(ToolPaths))


@pytest.mark.parametrize(("name", "setting"), list(environment().items()))
def test_readme_lists_every_backend_variable_with_its_default(name: str, setting: Any) -> None:
    readme = (ROOT / "README.md").read_text()
    row = re.search(rf"^\| `{setting.variable}` \| ([^|]*) \| ([^|]*) \|$", readme, re.MULTILINE)
    assert row, f"README.md: the backend settings table lacks `{setting.variable}`"
    default, description = row.group(1).strip(), " ".join(row.group(2).split())
    if setting.default is None:
        assert default.startswith("(unset"), f"README.md: {setting.variable} defaults to unset"
    else:
        assert default.startswith(f"`{setting.default}`"), f"README.md: {setting.variable} default"
    assert setting.description in description, f"README.md: {setting.variable} description"


def test_readme_lists_no_other_backend_variable() -> None:
    table = re.findall(r"^\| `(LM_[A-Z_]+)` \|", (ROOT / "README.md").read_text(), re.MULTILINE)
    declared = [setting.variable for setting in environment().values()]
    assert [variable for variable in table if variable not in declared] == []
    assert len(table) == len(set(table)), "README.md: a variable has two rows"


@pytest.mark.parametrize(("name", "setting"), list(environment().items()))
def test_backend_role_sets_every_backend_variable(name: str, setting: Any) -> None:
    variable = BACKEND_PREFIX + name
    mapping = (BACKEND_ROLE / "vars/main.yml").read_text()
    assert re.search(rf"'{setting.variable}': {BACKEND_PREFIX}(effective_)?{name}\b", mapping), (
        f"{BACKEND_ROLE}/vars/main.yml: the environment lacks {setting.variable}"
    )
    defaults = load_yaml(BACKEND_ROLE / "defaults/main.yml")
    assert variable in defaults, f"{BACKEND_ROLE}/defaults/main.yml lacks {variable}"
    if name not in BACKEND_ROLE_CHOOSES:
        expected = "" if setting.default is None else setting.default
        assert defaults[variable] == expected, f"{variable} should default to {expected!r}"
    assert variable in argument_specs(BACKEND_ROLE), f"argument_specs.yml lacks {variable}"


def test_every_settings_field_is_an_environment_variable() -> None:
    from backend.settings import Settings

    assert [spec.name for spec in fields(Settings)] == list(environment())
