"""What slurmctld tells its PrologSlurmctld/EpilogSlurmctld hooks through the environment.

Pure functions, standard library only and no Slurm command (hooks must not call scontrol):
`parse_job_licenses` reads SLURM_JOB_LICENSES, `first_host` / `iter_hostlist` read
SLURM_JOB_NODELIST and `exit_code` the epilog's SLURM_JOB_EXIT_CODE2. `license_counts` reads
every Slurm license list (the Slurm adapter's too).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

NO_VALUE = ("", "(null)")


class MalformedValue(ValueError):
    """A SLURM_JOB_* variable does not have the documented shape; the message quotes it."""


def license_counts(text: str, minimum: int = 0) -> dict[str, int]:
    """A Slurm license list (`a@x:3,b@y`: SLURM_JOB_LICENSES, squeue %W, a reservation's
    Licenses=) as {"a@x": 3, "b@y": 1}: a missing count is 1, a name given twice is summed,
    `(null)` or empty is none. MalformedValue names an empty name or a count below `minimum`.
    """
    licenses: dict[str, int] = {}
    if text.strip() in NO_VALUE:
        return licenses
    for item in text.split(","):
        name, separator, count = (part.strip() for part in item.partition(":"))
        if not name:
            raise MalformedValue("a license name is empty")
        if separator and (not is_number(count) or int(count) < minimum):
            raise MalformedValue(
                f"count of {name} must be a whole number >= {minimum}, got {count!r}"
            )
        licenses[name] = licenses.get(name, 0) + (int(count) if separator else 1)
    return licenses


def parse_job_licenses(raw: str | None) -> dict[str, int]:
    """The tracked licenses a job asked for, as {"product.feature": count}.

    `raw` is `name[:count],...` as submitted: a missing count means 1, `(null)` or empty means
    no licenses, `@server` suffixes are dropped and the same license named twice is summed.
    Names without a `.` cannot be a product.feature of ours and are left out.
    """
    try:
        named = license_counts(raw or "", minimum=1)
    except MalformedValue as error:
        raise MalformedValue(f"SLURM_JOB_LICENSES={raw!r}: {error}") from None
    licenses: dict[str, int] = {}
    for name, count in named.items():
        product_feature = name.split("@", 1)[0]
        product, dot, feature = product_feature.partition(".")
        if product and dot and feature:
            licenses[product_feature] = licenses.get(product_feature, 0) + count
    return licenses


def first_host(nodelist: str | None) -> str | None:
    """The job's lead host: the first name of SLURM_JOB_NODELIST (None when there is none)."""
    if nodelist is None or nodelist.strip() in NO_VALUE:
        return None
    return next(iter_hostlist(nodelist), None)


def iter_hostlist(nodelist: str) -> Iterator[str]:
    """Hosts of a hostlist in Slurm's order, lazily (the prolog only needs the first):
    `node[01-03,07],gpu-[1-2]-ib` -> node01, node02, node03, node07, gpu-1-ib, gpu-2-ib."""
    for pattern in _split_top_level(nodelist):
        yield from _expand_pattern(nodelist, pattern)


def _split_top_level(nodelist: str) -> Iterator[str]:
    """Split on the commas that are outside brackets."""
    depth = 0
    start = 0
    for position, character in enumerate(nodelist):
        if character == "[":
            depth += 1
            if depth > 1:
                raise MalformedValue(f"hostlist {nodelist!r}: nested '['")
        elif character == "]":
            depth -= 1
            if depth < 0:
                raise MalformedValue(f"hostlist {nodelist!r}: ']' without '['")
        elif character == "," and depth == 0:
            yield _non_empty(nodelist, nodelist[start:position])
            start = position + 1
    if depth:
        raise MalformedValue(f"hostlist {nodelist!r}: '[' is never closed")
    yield _non_empty(nodelist, nodelist[start:])


def _non_empty(nodelist: str, pattern: str) -> str:
    pattern = pattern.strip()
    if not pattern:
        raise MalformedValue(f"hostlist {nodelist!r}: empty host name")
    return pattern


def _expand_pattern(nodelist: str, pattern: str) -> Iterator[str]:
    """`rack[1-2]-n[01-02]` -> rack1-n01, rack1-n02, rack2-n01, rack2-n02."""
    opening = pattern.find("[")
    if opening < 0:
        yield pattern
        return
    closing = pattern.index("]", opening)
    prefix = pattern[:opening]
    for middle in _expand_ranges(nodelist, pattern[opening + 1 : closing]):
        for rest in _expand_pattern(nodelist, pattern[closing + 1 :]):
            yield prefix + middle + rest


def _expand_ranges(nodelist: str, ranges: str) -> Iterator[str]:
    """`01-03,7` -> 01, 02, 03, 7 (the width of the low bound is kept: zero padding)."""
    for part in ranges.split(","):
        low, dash, high = part.strip().partition("-")
        if not is_number(low) or (dash and not is_number(high)):
            raise MalformedValue(f"hostlist {nodelist!r}: bad range {part!r}")
        if not dash:
            yield low
            continue
        if int(high) < int(low):
            raise MalformedValue(f"hostlist {nodelist!r}: range {part!r} goes down")
        width = len(low)
        for number in range(int(low), int(high) + 1):
            yield str(number).zfill(width)


def exit_code(environ: Mapping[str, str]) -> int:
    """The batch script's exit code, as EpilogSlurmctld is told: `3` of SLURM_JOB_EXIT_CODE2=`3:0`
    (exit:signal), else of SLURM_JOB_EXIT_CODE (a wait status: 768 is exit 3); 0 when neither is
    set or readable (Slurm 22.05 gives `0:0` for cancelled, timed-out and node-failed jobs)."""
    code, _, _ = environ.get("SLURM_JOB_EXIT_CODE2", "").partition(":")
    if is_number(code):
        return int(code)
    status = environ.get("SLURM_JOB_EXIT_CODE", "")
    return (int(status) >> 8) & 0xFF if is_number(status) else 0


def is_number(text: str) -> bool:
    """True for ASCII digits only (str.isdigit also accepts superscripts and other scripts)."""
    return text.isascii() and text.isdigit()
