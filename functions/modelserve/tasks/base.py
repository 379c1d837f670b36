"""What a task is: the part of a function that differs by kind of model (cog's predictor).

A task turns verified artifacts into a ready model, answers a POST, and documents itself; the
endpoint around it (routing, errors, ids, logs, protocols) knows nothing of models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import flask

from ..artifacts import ModelArtifacts
from ..config import Settings
from ..contract import Manifest
from ..declarations import Declaration
from ..runtime import LazyModel

M = TypeVar("M", bound="LoadedModel")


@dataclass(frozen=True)
class LoadedModel:
    """What every loaded model carries: its verified manifest and where it came from."""

    manifest: Manifest
    version_uri: str

    def reference(self) -> dict[str, str]:
        return {"name": self.manifest.name, "version": self.manifest.version}


class Task(Protocol[M]):
    """What differs between kinds of function; everything else lives in Endpoint."""

    declaration: Declaration
    page: str  # the demo page in static/, answered on GET / to clients that prefer HTML

    def extra_files(self, manifest: Manifest) -> tuple[str, ...]:
        """Files beyond the model file that must be fetched and verified."""

    def build(self, artifacts: ModelArtifacts, settings: Settings) -> M:
        """Turn verified artifacts into a ready model (interpreters, schema, labels)."""

    def warm_up(self, model: M) -> None:
        """Run one inference so a model that loads but cannot run fails at load time."""

    def answer(self, request: flask.Request, model: LazyModel[M], settings: Settings) -> dict:
        """Parse, validate and predict one POST; raise AppError for anything wrong."""

    def openapi(self, model: M, settings: Settings) -> dict[str, Any]:
        """The OpenAPI document, built from the model's manifest."""
