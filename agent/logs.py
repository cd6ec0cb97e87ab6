"""Logging of every `lm-agent` command: one line per decision, to the log file and stderr.

cron runs, prologs and epilogs append to the same file from many processes at once, so rotation
is left to logrotate (docs/agent.md). Commands that may run long (`reconcile --loop`) use a
WatchedFileHandler, which reopens the file when logrotate has moved it; the hooks live a fraction
of a second and open it once with a plain FileHandler, sparing slurmctld the import of
logging.handlers (~8 ms on every job start). A log file we cannot open never stops a hook: the
problem is reported on stderr and logging continues there.
"""

from __future__ import annotations

import logging
import os
import sys

from agent.config import AgentConfig, ConfigError, load_config

LINE_FORMAT = "%(asctime)s %(levelname)s lm-agent {command}[%(process)d]: %(message)s"


SHORT_LIVED_COMMANDS = frozenset({"prolog", "epilog"})


def file_handler(path: str, command: str) -> logging.Handler:
    if command in SHORT_LIVED_COMMANDS:
        return logging.FileHandler(path)
    from logging.handlers import WatchedFileHandler

    return WatchedFileHandler(path)


def setup_logging(config: AgentConfig | None, command: str) -> logging.Logger:
    """Send the agent's log lines to stderr and `config.log_file`; returns the command's logger."""
    formatter = logging.Formatter(LINE_FORMAT.format(command=command))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    file_problem = None
    if config is not None and config.log_file:
        try:
            os.makedirs(os.path.dirname(config.log_file), mode=0o755, exist_ok=True)
            handlers.append(file_handler(config.log_file, command))
        except OSError as error:
            file_problem = f"cannot write log file {config.log_file}: {error.strerror}"
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(config.log_level if config is not None else logging.INFO)
    logger = logging.getLogger(f"agent.{command}")
    if file_problem:
        logger.warning(file_problem)
    return logger


def start_command(command: str) -> tuple[AgentConfig, logging.Logger] | None:
    """Load the configuration and set up logging; None, after one stderr line, when invalid."""
    try:
        config = load_config()
    except ConfigError as error:
        print(f"lm-agent {command}: configuration error: {error}", file=sys.stderr)
        return None
    return config, setup_logging(config, command)
