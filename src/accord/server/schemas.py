"""Request and response bodies of the /api routes, with the examples shown in the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, PlainSerializer, model_validator
from pydantic_core import to_json
from starlette.responses import JSONResponse

from accord.core.times import iso_utc

_STRICT = ConfigDict(extra="forbid")
MAX_INT64 = 2**63 - 1  # revisions and versions are BIGINT columns: larger numbers can never match

# every time in an answer: ISO 8601 UTC with "Z", as the CLI prints it (accord.core.times)
UtcTime = Annotated[datetime, PlainSerializer(iso_utc, return_type=str)]


class RowResponse(JSONResponse):
    """A row of ConfigAdmin (already JSON-ready, shaped as the route's documented model) sent as is.

    The hot routes return this instead of a model instance: building and re-validating a pydantic
    model per request cost more than the rest of a GET. Bytes are what the model would dump.
    """

    def render(self, content: Any) -> bytes:
        return to_json(content, inf_nan_mode="null")


class ErrorOut(BaseModel):
    """Every error answer has this shape, whatever the status."""

    error: str = Field(examples=["ValidationFailedError"])
    detail: str = Field(examples=["invalid value for embedding.batch_size: 0 — must be >= 1"])
    request_id: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorOut, "description": "The request was refused; `detail` says why."},
    503: {"model": ErrorOut, "description": "The database is unreachable; nothing was written."},
}


class SettingOut(BaseModel):
    path: str = Field(examples=["embedding.batch_size"])
    value: JsonValue = Field(description="Masked when the setting is secret (unless revealed).", examples=[512])
    type: str = Field(examples=["int"])
    default: JsonValue = Field(examples=[2048])
    source: str = Field(description="stored, env or default", examples=["stored"])
    pinned: bool
    shadowed_env: str | None = Field(description="An environment variable the stored value overrides.")
    version: int = Field(description="Per-key version; 0 when nothing is stored.")
    mod_revision: int
    secret: bool
    description: str
    declared_by: str | None = Field(None, description="Who registered this declaration (the connecting actor).")
    declared_at: str | None = Field(None, description="When this declaration was registered (UTC, ISO 8601).")


class SettingsOut(BaseModel):
    revision: int
    settings: list[SettingOut]


class ChangeOut(SettingOut):
    old: JsonValue = Field(description="The effective value before the write (masked when secret).")
    new: JsonValue = Field(description="The effective value after the write (masked when secret).")


class ProfileValueOut(BaseModel):
    """A value in an environment profile's layer (``?env=<profile>``, docs/config.md "Environments")."""

    path: str = Field(examples=["embedding.batch_size"])
    env: str = Field(examples=["production"])
    key: str = Field(examples=["env/production/config/embedding/batch_size"])
    secret: bool
    value: JsonValue = Field(description="Masked when the setting is secret (unless revealed).", examples=[512])
    source: str = Field(examples=["profile"])
    version: int
    mod_revision: int


class ProfileChangeOut(ProfileValueOut):
    revision: int
    applied_revision: int | None = Field(
        default=None, description="With ?wait_applied: the revision every live instance applied."
    )


class PutIn(BaseModel):
    """Give ``value`` as JSON, or ``input`` as text typed by a person (parsed by the setting's type)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"value": 512, "expect_version": 3}, {"input": "512"}]}
    )
    value: JsonValue = None
    input: str | None = Field(default=None, max_length=600_000)
    expect_version: int | None = Field(
        default=None, ge=0, le=MAX_INT64, description="Compare-and-set; 0 means create only."
    )

    @model_validator(mode="before")
    @classmethod
    def _one_of(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("value" in data) == ("input" in data):
            raise ValueError("give exactly one of 'value' or 'input'")
        return data


class RollbackIn(BaseModel):
    model_config = _STRICT
    to_version: int | None = Field(default=None, ge=1, le=MAX_INT64, examples=[2])
    to_revision: int | None = Field(default=None, ge=1, le=MAX_INT64, description="instead of to_version")


class HistoryOut(BaseModel):
    revision: int
    version: int
    op: str
    value: JsonValue
    actor: str
    at: UtcTime | None
    action: str | None = None


class DiffRow(BaseModel):
    path: str
    old: JsonValue
    new: JsonValue
    revision: int


class DiffOut(BaseModel):
    from_revision: int
    to_revision: int
    changes: list[DiffRow]


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"settings": {"llm.model": "gpt-4o"}}]})
    settings: dict[str, JsonValue]


class ImportRow(BaseModel):
    path: str
    old: JsonValue
    new: JsonValue
    note: str | None = Field(None, description="Why a secret was not compared (the caller may not reveal it).")


class ImportOut(BaseModel):
    dry_run: bool
    changes: list[ImportRow]
    unchanged: int


class MigrateOut(BaseModel):
    dry_run: bool
    migrated: dict[str, JsonValue]
    unchanged: list[str]
    skipped_unknown: list[str]
    not_compared: list[str] = Field(
        default_factory=list, description="Secrets the caller may not reveal: written as given, never compared."
    )


class AuditRow(BaseModel):
    revision: int
    at: UtcTime | None
    actor: str
    action: str | None
    request_id: str | None
    key: str
    path: str | None
    op: str
    old: JsonValue
    new: JsonValue


class TokenIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "ci", "rules": ["config/llm/=write", "config/=read"]}]},
    )
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    rules: list[Annotated[str, Field(pattern=r"^\s*[A-Za-z0-9_.\-/]*=(deny|read|write)\s*$")]] = Field(
        default_factory=list, max_length=200, description="PREFIX=read|write|deny; the longest matching prefix wins."
    )
    reveal_secrets: bool = False
    ttl_seconds: int | None = Field(default=None, gt=0, le=10 * 365 * 86400)


class TokenOut(BaseModel):
    name: str
    accessor: str
    rules: list[str]
    reveal_secrets: bool
    created_at: UtcTime
    created_by: str
    expires_at: UtcTime | None
    expired: bool


class TokenCreated(TokenOut):
    secret: str = Field(description="The token itself; shown once, only its hash is stored.")
    warnings: list[str] = Field(default_factory=list, description="Rules that probably match more than meant.")


class Readiness(BaseModel):
    ready: bool
    dependencies: dict[str, dict[str, JsonValue]]
