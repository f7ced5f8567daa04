"""The command's subcommands are registered in one place: the list in ``eval_firewall.cli``."""

from __future__ import annotations

import pkgutil

import eval_firewall.cli as cli


def test_every_command_module_adds_its_command_and_nothing_else_registers():
    # every module of the package is one command, except the options several commands share
    modules = sorted(m.name for m in pkgutil.iter_modules(cli.__path__) if m.name != "options")
    assert sorted(cli.main.commands) == modules
    for name, command in cli.main.commands.items():
        assert command.callback is not None and command.callback.__module__ == f"eval_firewall.cli.{name}"
