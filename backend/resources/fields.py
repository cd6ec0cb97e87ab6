"""Shared schema building blocks: bounded fields (bad input is a 422, never a database error)
and partial PUT bodies."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

MAX_TEXT_LENGTH = 255
# PostgreSQL `integer`: ids, and the upper bound of every count and duration we accept.
MAX_INTEGER = 2**31 - 1


def refuse_unstorable(value: str) -> None:
    """PostgreSQL text holds neither NUL characters nor lone surrogates (which JSON's `\\ud800`
    escapes decode to): refuse them here instead of failing on insert."""
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Must not contain unpaired surrogate characters.") from None


class Text(fields.String):
    """A non-empty string, trimmed, at most 255 characters (the columns' size)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            validate=[validate.Length(min=1, max=MAX_TEXT_LENGTH), refuse_unstorable], **kwargs
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class SlurmJobId(fields.String):
    """A Slurm job id as SLURM_JOB_ID gives it: plain ids, array tasks (123_4) and heterogeneous
    components (123+0)."""

    PATTERN = r"^[0-9A-Za-z_.+-]{1,64}$"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {"example": "123"})
        super().__init__(
            validate=validate.Regexp(
                self.PATTERN, error="Not a Slurm job id (1-64 of 0-9 A-Z a-z _ . + -)."
            ),
            **kwargs,
        )


class BoundedInteger(fields.Integer):
    """A JSON integer (no strings, floats or booleans) between `minimum` and 2**31-1."""

    def __init__(self, minimum: int, **kwargs: Any) -> None:
        super().__init__(
            strict=True, validate=validate.Range(min=minimum, max=MAX_INTEGER), **kwargs
        )


class RowId(BoundedInteger):
    """The id of a row another resource refers to (config_id, product_id, ...)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(minimum=1, **kwargs)


class Count(BoundedInteger):
    """A number of licenses or seconds: zero or more."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(minimum=0, **kwargs)


class PartialUpdate:
    """Mixin for a PUT body schema: every field optional, only the fields sent change."""

    def __init__(self, **kwargs: Any) -> None:
        # The marshmallow Schema that follows this mixin in the MRO takes `partial`.
        super().__init__(partial=True, **kwargs)  # type: ignore[call-arg]
