"""Errors a person can act on. The UI turns them into a sentence, the CLI into a message and exit code."""

from __future__ import annotations

from dataclasses import dataclass, field


class SpokeError(Exception):
    """Base of every error that carries a message fit to show a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class FieldProblem:
    field: str
    message: str


class ValidationFailed(SpokeError):
    """One or more fields of a form are wrong; each problem names its field and what is expected."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))

    def for_field(self, name: str) -> str | None:
        for p in self.problems:
            if p.field == name:
                return p.message
        return None


@dataclass
class Advisory:
    """A warning the user may override (a failed ABHA check digit, a likely duplicate)."""

    field: str
    message: str
    extra: dict = field(default_factory=dict)


class NotAllowed(SpokeError):
    """The signed-in user's role does not permit this action."""


class InvalidTransition(SpokeError):
    """A case cannot move from its present state to the one asked for."""


class AuthenticationFailed(SpokeError):
    pass


class AccountLocked(SpokeError):
    pass


class NotFound(SpokeError):
    pass


class DatabaseDamaged(SpokeError):
    """The local database failed its integrity check; a last good copy may be offered."""
