"""Settings of license-failure requeueing: the `license_failures` section of agent.yaml.

Kept apart from the decision itself (agent.license_failure) so that loading the configuration,
which every prolog does, costs only the parsing of this section: the catalogue and the file
reading are imported by the epilog of a failed job alone. Admins' regular expressions are
compiled here, so a bad one is a configuration error naming its key, not a surprise in an
epilog.

    license_failures:
      requeue: true              # false: the epilog never looks (global off switch)
      max_requeues: 3            # per job; then it is left failed, reason logged and recorded
      tail_bytes: 65536          # read at most this much from the end of each output file
      scan_timeout: 2            # seconds for the whole search, files and patterns
      output_folders: []         # when set, only output files under these folders are read
      rules:                     # per product (abaqus) or feature (abaqus.cae), or job name
        - product: abaqus
          exit_codes: [39]       # these exit codes alone mean "no license"
          patterns: ['Abaqus License Manager: .* not available']
          requeue: true          # false: recognise and record, but never requeue
      not_license_failures:      # a pattern match is not enough when one of these matches
        - product: ansys
          pattern: 'license test mode'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

MAX_TAIL_BYTES = 16 * 1024 * 1024
MAX_SCAN_TIMEOUT = 30.0
Item = TypeVar("Item")


class SettingError(ValueError):
    """One key of the section is wrong; the message names it (agent.config adds the file)."""


@dataclass(frozen=True)
class JobSelector:
    """Which jobs a rule is about: by the licenses they asked for, and/or by their name."""

    product: str | None = None  # "abaqus" (any of its features) or "abaqus.cae"
    job_name: re.Pattern[str] | None = None

    def selects(self, licenses: Mapping[str, int], job_name: str) -> bool:
        if self.product is not None and not any(
            name == self.product or name.split(".", 1)[0] == self.product for name in licenses
        ):
            return False
        return self.job_name is None or bool(self.job_name.search(job_name))

    @property
    def label(self) -> str:
        """How log lines and events name the rule: `abaqus`, `job_name=^abq`, or both."""
        parts = [self.product] if self.product else []
        if self.job_name is not None:
            parts.append(f"job_name={self.job_name.pattern}")
        return " ".join(parts)


@dataclass(frozen=True)
class FailureRule:
    """`rules[]`: what else means "no license" for these jobs, and whether to requeue them."""

    selector: JobSelector
    exit_codes: frozenset[int] = frozenset()
    patterns: tuple[re.Pattern[str], ...] = ()
    requeue: bool = True


@dataclass(frozen=True)
class NotLicenseFailureRule:
    """`not_license_failures[]`: every condition given must hold for the rule to veto."""

    selector: JobSelector
    exit_codes: frozenset[int] = frozenset()
    pattern: re.Pattern[str] | None = None

    def matches(
        self, licenses: Mapping[str, int], job_name: str, exit_code: int, text: str
    ) -> bool:
        return (
            self.selector.selects(licenses, job_name)
            and (not self.exit_codes or exit_code in self.exit_codes)
            and (self.pattern is None or bool(self.pattern.search(text)))
        )


@dataclass(frozen=True)
class LicenseFailureSettings:
    requeue: bool = True
    max_requeues: int = 3
    tail_bytes: int = 64 * 1024
    scan_timeout: float = 2.0
    output_folders: tuple[str, ...] = ()
    rules: tuple[FailureRule, ...] = ()
    not_license_failures: tuple[NotLicenseFailureRule, ...] = ()


def parse_settings(raw: Any, prefix: str = "license_failures") -> LicenseFailureSettings:
    """The section as written in agent.yaml (None: defaults); SettingError names a bad key."""
    if raw is None:
        return LicenseFailureSettings()
    section = _mapping(prefix, raw, KNOWN_KEYS)
    defaults = LicenseFailureSettings()

    def key(name: str) -> tuple[str, Any]:
        return f"{prefix}.{name}", section.get(name, getattr(defaults, name))

    return LicenseFailureSettings(
        requeue=_bool(*key("requeue")),
        max_requeues=_whole(*key("max_requeues"), 0, 100),
        tail_bytes=_whole(*key("tail_bytes"), 1, MAX_TAIL_BYTES),
        scan_timeout=_seconds(*key("scan_timeout")),
        output_folders=_items(*key("output_folders"), _folder),
        rules=_items(*key("rules"), _rule),
        not_license_failures=_items(*key("not_license_failures"), _not_rule),
    )


def _items(key: str, raw: Any, parse: Callable[[str, Any], Item]) -> tuple[Item, ...]:
    return tuple(parse(f"{key}[{n}]", value) for n, value in enumerate(_list(key, raw)))


KNOWN_KEYS = (
    "requeue",
    "max_requeues",
    "tail_bytes",
    "scan_timeout",
    "output_folders",
    "rules",
    "not_license_failures",
)
SELECTOR_KEYS = ("product", "job_name")
RULE_KEYS = (*SELECTOR_KEYS, "exit_codes", "patterns", "requeue")
NOT_RULE_KEYS = (*SELECTOR_KEYS, "exit_codes", "pattern")


def _rule(key: str, raw: Any) -> FailureRule:
    section = _mapping(key, raw, RULE_KEYS)
    return FailureRule(
        selector=_selector(key, section),
        exit_codes=_exit_codes(f"{key}.exit_codes", section.get("exit_codes")),
        patterns=_items(f"{key}.patterns", section.get("patterns"), _regex),
        requeue=_bool(f"{key}.requeue", section.get("requeue", True)),
    )


def _not_rule(key: str, raw: Any) -> NotLicenseFailureRule:
    section = _mapping(key, raw, NOT_RULE_KEYS)
    pattern = section.get("pattern")
    rule = NotLicenseFailureRule(
        selector=JobSelector(
            product=_optional_product(f"{key}.product", section.get("product")),
            job_name=_optional_regex(f"{key}.job_name", section.get("job_name")),
        ),
        exit_codes=_exit_codes(f"{key}.exit_codes", section.get("exit_codes")),
        pattern=None if pattern is None else _regex(f"{key}.pattern", pattern),
    )
    if not any(section.get(name) is not None for name in NOT_RULE_KEYS):
        raise SettingError(f"{key}: give at least one of {', '.join(NOT_RULE_KEYS)}")
    return rule


def _selector(key: str, section: Mapping[str, Any]) -> JobSelector:
    selector = JobSelector(
        product=_optional_product(f"{key}.product", section.get("product")),
        job_name=_optional_regex(f"{key}.job_name", section.get("job_name")),
    )
    if selector.product is None and selector.job_name is None:
        raise SettingError(f"{key}: give product and/or job_name (which jobs the rule is about)")
    return selector


def _mapping(key: str, raw: Any, known: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise SettingError(f"{key}: must be a mapping, got {raw!r}")
    unknown = sorted(str(name) for name in raw if name not in known)
    if unknown:
        raise SettingError(f"{key}.{unknown[0]}: unknown key (known: {', '.join(known)})")
    return raw


def _list(key: str, raw: Any) -> list[Any] | tuple[Any, ...]:
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise SettingError(f"{key}: must be a list, got {raw!r}")
    return raw


def _bool(key: str, raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise SettingError(f"{key}: must be true or false, got {raw!r}")
    return raw


def _whole(key: str, raw: Any, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise SettingError(f"{key}: must be a whole number from {low} to {high}, got {raw!r}")
    return raw


def _seconds(key: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= MAX_SCAN_TIMEOUT:
        raise SettingError(f"{key}: must be seconds > 0 and <= {MAX_SCAN_TIMEOUT:g}, got {raw!r}")
    return float(raw)


def _folder(key: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.startswith("/"):
        raise SettingError(f"{key}: must be an absolute folder, got {raw!r}")
    return raw.rstrip("/") or "/"


def _exit_codes(key: str, raw: Any) -> frozenset[int]:
    codes = _list(key, raw)
    for code in codes:
        _whole(key, code, 1, 255)
    return frozenset(codes)


def _optional_product(key: str, raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip() or any(c in raw for c in "@:, "):
        raise SettingError(f"{key}: must be a product or product.feature name, got {raw!r}")
    return raw.strip()


def _optional_regex(key: str, raw: Any) -> re.Pattern[str] | None:
    return None if raw is None else _regex(key, raw)


def _regex(key: str, raw: Any) -> re.Pattern[str]:
    if not isinstance(raw, str) or not raw:
        raise SettingError(f"{key}: must be a regular expression (text), got {raw!r}")
    try:
        return re.compile(raw, re.IGNORECASE)
    except re.error as error:
        raise SettingError(f"{key}: not a valid regular expression: {error}") from None
