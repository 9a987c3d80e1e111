"""Command groups registered by name and imported when first used, so ``accord X`` loads only X's modules.

``accord --version`` and an HTTP-only command then never import SQLAlchemy, Alembic, Redis or the
web stack; ``accord --help`` imports every group to show its summary.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from typing import Any, TypeVar

import typer
from typer.core import TyperGroup
from typer.main import get_group


@dataclass(frozen=True)
class LazyCommand:
    """``module:attribute``: a Typer app (a group of commands) or a plain function (one command)."""

    target: str
    no_args_is_help: bool = False

    def load(self, name: str) -> typer.core.TyperCommand | TyperGroup:
        module_name, _, attribute = self.target.partition(":")
        found = getattr(importlib.import_module(module_name), attribute)
        holder = typer.Typer()
        if isinstance(found, typer.Typer):
            holder.add_typer(found, name=name, no_args_is_help=self.no_args_is_help)
        else:
            holder.command(name)(found)
        command = get_group(holder).commands[name]
        assert isinstance(command, typer.core.TyperCommand | TyperGroup)
        return name_placeholders(command)


LAZY_COMMANDS: dict[str, LazyCommand] = {
    "config": LazyCommand("accord.cli.config_cmds:config_app"),
    "token": LazyCommand("accord.cli.token_cmds:token_app", no_args_is_help=True),
    "secrets": LazyCommand("accord.cli.secrets_cmds:secrets_app"),
    "vault": LazyCommand("accord.cli.vault_cmds:vault_app"),
    "proxy": LazyCommand("accord.cli.vault_cmds:proxy"),
    "kv": LazyCommand("accord.cli.registry_cmds:kv_app", no_args_is_help=True),
    "services": LazyCommand("accord.cli.registry_cmds:services_app", no_args_is_help=True),
    "health": LazyCommand("accord.cli.registry_cmds:health"),
    "service-url": LazyCommand("accord.cli.registry_cmds:service_url"),
    "exec": LazyCommand("accord.cli.exec_cmds:exec_command"),
    "render": LazyCommand("accord.cli.exec_cmds:render_command"),
    "events": LazyCommand("accord.cli.events_cmds:events_app", no_args_is_help=True),
}


class LazyGroup(TyperGroup):
    """The ``accord`` group: its own commands, then the lazy ones, each imported on first lookup."""

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return [*super().list_commands(ctx), *(name for name in LAZY_COMMANDS if name not in self.commands)]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> typer.core.TyperCommand | TyperGroup | None:  # type: ignore[override]
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            self.commands[cmd_name] = LAZY_COMMANDS[cmd_name].load(cmd_name)
        found = super().get_command(ctx, cmd_name)
        assert found is None or isinstance(found, typer.core.TyperCommand | TyperGroup)
        return None if found is None else name_placeholders(found)


_Command = TypeVar("_Command", bound=typer.core.TyperCommand | TyperGroup)


def name_placeholders(command: _Command) -> _Command:
    """PATH/VALUE-style placeholders in ``--help`` and usage lines, not Typer's ``<str>``/``{path}``.

    An argument is its name in capitals (``PATH VALUE``); an option taking a value is the last word of its
    name (``--db-url URL``, ``--expect-version VERSION``).
    """
    for param in command.params:
        if param.metavar is not None:
            continue
        # Typer bundles its own click: the kinds are told by name, not by class
        if param.param_type_name == "argument":
            param.metavar = (param.name or "value").upper()
            param.type = copy.copy(param.type)  # a copy: the STRING type object is shared by every parameter
            setattr(param.type, "get_metavar", _no_type_column)  # noqa: B010 - an instance, not the class
        elif param.param_type_name == "option" and not getattr(param, "is_flag", False) and not _is_choice(param):
            param.metavar = (param.name or "value").rsplit("_", 1)[-1].upper()
    for sub in getattr(command, "commands", {}).values():
        name_placeholders(sub)
    return command


def _no_type_column(*_args: object, **_kwargs: object) -> str:
    """Typer's help prints an argument's type as ``<str>`` unless the type names a placeholder; the name says it."""
    return ""


def _is_choice(param: typer.core.TyperOption | typer.core.TyperArgument | Any) -> bool:
    return hasattr(param.type, "choices")


__all__ = ["LAZY_COMMANDS", "LazyGroup"]
