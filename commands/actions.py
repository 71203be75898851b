"""The catalogue: the only actions a command may name, each with the shape of its arguments.

Adding an action is one ``ActionSpec`` here (and teaching the agent to run it).
The arguments are msgspec Structs: they validate what operators send and give
the JSON Schema served at ``GET /api/commands/actions`` and in the OpenAPI schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

SHELL = "shell"
SHELL_PERMISSION = "commands.run_shell"
SHELL_COMMAND_MAX_CHARS = 4096


class NoArgs(msgspec.Struct, forbid_unknown_fields=True):
    """This action takes no arguments: ``{}``."""


class PingArgs(NoArgs):
    """``ping``: the agent answers at once with its clock and version."""


class CollectNowArgs(NoArgs):
    """``collect-now``: the agent collects and sends a batch at once."""


class RestartAgentArgs(NoArgs):
    """``restart-agent``: the agent reports success, then flushes and restarts its own process."""


class SetIntervalArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``set-interval``: the agent's collection interval, in seconds."""

    seconds: Annotated[int, msgspec.Meta(ge=1, le=3600, description="New collection interval, 1 to 3600 s.")]


class ShellArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``shell``: a command line the agent runs, if its own allow-list admits it, with the command's timeout."""

    command: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=SHELL_COMMAND_MAX_CHARS,
            # PostgreSQL stores no NUL, and no shell takes one.
            pattern=r"^[^\x00]*$",
            description="The command line, at most 4096 characters.",
        ),
    ]


@dataclass(frozen=True)
class ActionSpec:
    """One action of the catalogue: its name, what the agent does, and its arguments' shape."""

    name: str
    description: str
    args: type[msgspec.Struct]
    # Shell is the one action that needs a permission of its own and a host an admin enabled.
    shell: bool = False

    def args_check(self, raw: Any) -> dict[str, Any] | str:
        """The arguments as stored (plain JSON), or the reason they are refused (naming the field)."""
        try:
            checked = msgspec.convert(raw, type=self.args)
        except msgspec.ValidationError as exc:
            return str(exc)
        return msgspec.to_builtins(checked)

    def args_schema(self) -> dict[str, Any]:
        """The JSON Schema of the arguments, inline (``properties`` at the top, no ``$ref``), as forms read it."""
        _, components = msgspec.json.schema_components([self.args])
        return components[self.args.__name__]


CATALOGUE: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in [
        ActionSpec("ping", "Answer at once: succeeded, data {agentTime, agentVersion}.", PingArgs),
        ActionSpec("collect-now", "Collect and send a batch at once: succeeded, data {sequence}.", CollectNowArgs),
        ActionSpec(
            "set-interval", "Change the collection interval: succeeded, data {intervalSeconds}.", SetIntervalArgs
        ),
        ActionSpec("restart-agent", "Report succeeded, then flush and restart the agent's process.", RestartAgentArgs),
        ActionSpec(
            SHELL,
            "Run a command line (on hosts where an admin enabled shell, and in the agent's allow-list), "
            "with the command's timeout: exit code and output.",
            ShellArgs,
            shell=True,
        ),
    ]
}
