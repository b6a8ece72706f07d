"""The one base of every settings section: unknown keys are errors (a typo in configs/fraudops.yaml or a
FRAUDOPS_* variable fails at start-up instead of being ignored) and values are frozen once loaded."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
