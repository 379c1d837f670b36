"""The one exception tree: every error a client can see, with its status and problems."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: the field it concerns (or None), a code, a message."""

    field: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, str | None]:
        return {"field": self.field, "code": self.code, "message": self.message}


class AppError(Exception):
    """An error answered to the client as the JSON envelope `{"id", "errors": [...]}`."""

    status = 400

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        *,
        problems: list[Problem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.problems = problems or [Problem(field, code, message)]
        self.headers = headers or {}

    @classmethod
    def of(cls, problems: list[Problem]) -> AppError:
        """One error carrying several problems (the first one gives its code and message)."""
        first = problems[0]
        return cls(first.code, first.message, first.field, problems=problems)


class BadRequest(AppError):
    status = 400


class NotFound(AppError):
    status = 404


class MethodNotAllowed(AppError):
    status = 405

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        super().__init__(
            "method_not_allowed",
            f"Method {method} is not allowed here; use {' or '.join(allowed)}.",
            headers={"Allow": ", ".join(allowed)},
        )


class RequestTimeout(AppError):
    status = 408


class PayloadTooLarge(AppError):
    status = 413


class UnsupportedMediaType(AppError):
    status = 415


class ModelUnavailable(AppError):
    """The model could not be loaded or run; the client should retry after `retry_after` s."""

    status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__("model_unavailable", message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class ModelError(Exception):
    """A model version could not be fetched, verified or loaded (becomes a 503)."""
