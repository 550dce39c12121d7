"""The hub's refusals: an HTTP status, a machine code and a sentence for the spoke's user."""

from __future__ import annotations


class HubError(Exception):
    """An error with an HTTP status, a machine code and a sentence for the spoke's user."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after
        self.headers = headers or {}
