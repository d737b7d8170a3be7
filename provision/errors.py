"""The one error hierarchy of the package and the exit codes the CLI documents.

Exit codes (also in README):
    0  success
    1  the work ran but some of it failed (a board, a check that found a difference)
    2  usage error (click's own code for a bad flag)
    3  bad input: a file, row or field is wrong; nothing was written
    4  the environment is missing something (a tool, a package, a port)
"""

from __future__ import annotations

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_ENVIRONMENT",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EnvironmentProblem",
    "InputError",
    "OutputBusy",
    "ProvisionError",
    "UsageProblem",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_ENVIRONMENT = 4


class ProvisionError(Exception):
    """An expected failure: the CLI prints its lines to stderr, without a traceback."""

    exit_code: int = EXIT_FAILED

    def __init__(self, *lines: str) -> None:
        if not lines:
            raise ValueError("ProvisionError needs at least one line of explanation")
        super().__init__(lines[0])
        self.lines: tuple[str, ...] = lines


class InputError(ProvisionError):
    """Bad input. Each line names the place (file:row: column:) and what is wrong."""

    exit_code = EXIT_BAD_INPUT


class EnvironmentProblem(ProvisionError):
    """Something the machine lacks; the message says what to install or check."""

    exit_code = EXIT_ENVIRONMENT


class UsageProblem(InputError):
    """A flag's value or a combination of flags is wrong (exit 2, as click's own usage errors)."""

    exit_code = EXIT_USAGE


class OutputBusy(ProvisionError):
    """Another run holds the output's lock; this one changed nothing."""
