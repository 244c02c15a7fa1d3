"""Heal actions: what to run when a check is CRITICAL.

An action is an argv list. It is never handed to a shell unless it was
built with ``shell=True`` explicitly: a heal string such as
``"systemctl restart nginx; rm -rf /"`` is split as shlex splits it
(``shellwords``) and run as the literal words, so the ``;`` is just an
argument ``systemctl`` rejects.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: keep the import off the plugin's path
    from collections.abc import Sequence
    from typing import Any

SUDO = ("sudo", "-n", "--")
SHELL = ("/bin/sh", "-c")
#: systemctl verbs that start a unit, which its start limit can refuse.
STARTING_VERBS = ("restart", "start", "reload-or-restart", "try-restart", "try-reload-or-restart")


class Action:
    """Base class: an argv, optionally run through sudo ``-n``."""

    def __init__(self, argv: Sequence[str], *, sudo: bool = False, shell: bool = False) -> None:
        argv = list(argv)
        if not argv or not all(isinstance(word, str) and word for word in argv):
            raise ValueError("a heal action needs a non-empty command")
        if any("\0" in word for word in argv):
            raise ValueError("a heal action must not contain NUL bytes")
        self.words = tuple(argv)
        self.sudo = bool(sudo)
        self.shell = bool(shell)

    @property
    def argv(self) -> list[str]:
        """The argv actually executed."""
        words = [*SHELL, self.words[0]] if self.shell else list(self.words)
        # -n: a sudo that would ask for a password fails at once instead of
        # hanging until action_timeout with nobody at the terminal.
        return self.prefixed(words)

    def prefixed(self, words: Sequence[str]) -> list[str]:
        """``words`` as this action runs a command: through ``sudo -n`` when it says ``sudo``."""
        return [*SUDO, *words] if self.sudo else list(words)

    def start_limit(self) -> dict[str, object] | None:
        """What the runner does first when the unit is at its start limit; None for most actions."""
        return None

    def describe(self) -> str:
        """The action as the operator wrote it, for output notes."""
        from selfheal.core import shellwords  # only for notes: a cached check's healthy run never quotes

        text = self.words[0] if self.shell else shellwords.join(self.words)
        return f"sudo {text}" if self.sudo else text

    def with_sudo(self, sudo: bool) -> Action:
        action = object.__new__(type(self))
        action.__dict__.update(self.__dict__)
        action.sudo = bool(sudo)
        return action

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Action) and self.argv == other.argv

    def __hash__(self) -> int:
        return hash(tuple(self.argv))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"

    def to_json(self) -> dict[str, object]:
        """The action as plain data, shaped like the config's ``heal:`` mapping.

        Only the kinds a config can name have one (``action_from_json``
        rebuilds them); anything else raises ValueError, so a cache leaves
        such a check out rather than guess at its class.
        """
        raise ValueError(f"a {type(self).__name__} action has no plain form")


class Command(Action):
    """Any command. A string is split as shlex would, never run by a shell.

    ``Command("logrotate -f /etc/logrotate.conf")`` runs logrotate with two
    arguments. ``Command("a && b", shell=True)`` runs ``/bin/sh -c "a && b"``,
    which only the config can ask for.
    """

    def __init__(self, command: str | Sequence[str], *, sudo: bool = False, shell: bool = False) -> None:
        if isinstance(command, str):
            if shell:
                words = [command] if command.strip() else []
            else:
                from selfheal.core import shellwords  # a heal written as one string: config and wrap only

                try:
                    words = shellwords.split(command)
                except ValueError as exc:
                    raise ValueError(f"cannot split heal command {command!r}: {exc}") from None
        else:
            words = list(command)
            if shell and len(words) != 1:
                # A shell takes one script; joining argv words would re-open
                # the quoting problems shell=False exists to avoid.
                raise ValueError("with shell: true, give the heal command as one string")
        super().__init__(words, sudo=sudo, shell=shell)

    def to_json(self) -> dict[str, object]:
        _exactly(self, Command)
        return {"command": list(self.words), "shell": self.shell, "sudo": self.sudo}

    @classmethod
    def from_json(cls, data: object) -> Command:
        words = _field(data, "command", list, ("command", "shell", "sudo"))
        if not all(type(word) is str for word in words):
            raise ValueError("a heal command must be a list of strings")
        return cls(words, sudo=_field(data, "sudo", bool), shell=_field(data, "shell", bool))


class Systemd(Action):
    """``systemctl VERB UNIT``, by default a restart."""

    def __init__(self, unit: str, verb: str = "restart", *, sudo: bool = False) -> None:
        if not unit or unit.startswith("-") or any(c.isspace() for c in unit):
            raise ValueError(f"not a systemd unit name: {unit!r}")
        self.unit = unit
        self.verb = verb
        super().__init__(["systemctl", verb, unit], sudo=sudo)

    def to_json(self) -> dict[str, object]:
        _exactly(self, Systemd)
        return {"systemd": self.unit, "verb": self.verb, "sudo": self.sudo}

    @classmethod
    def from_json(cls, data: object) -> Systemd:
        unit = _field(data, "systemd", str, ("systemd", "verb", "sudo"))
        return cls(unit, _verb(data), sudo=_field(data, "sudo", bool))

    def start_limit(self) -> dict[str, object] | None:
        """A unit that crash-looped into ``Result=start-limit-hit`` refuses a restart
        until ``systemctl reset-failed``: the very state a heal is called for.

        The reset goes through the same sudo as the restart (a sudoers rule
        for it too); reading the state needs no privilege.
        """
        if self.verb not in STARTING_VERBS:
            return None
        return {
            "unit": self.unit,
            "show": ["systemctl", "show", "-p", "ActiveState", "-p", "Result", self.unit],
            "reset": self.prefixed(["systemctl", "reset-failed", self.unit]),
        }


class InitScript(Action):
    """``/etc/init.d/NAME VERB``, for hosts without systemd."""

    def __init__(self, name: str, verb: str = "restart", *, sudo: bool = False) -> None:
        if not name or "/" in name or name.startswith(("-", ".")):
            raise ValueError(f"not an init script name: {name!r}")
        self.name = name
        self.verb = verb
        super().__init__([f"/etc/init.d/{name}", verb], sudo=sudo)

    def to_json(self) -> dict[str, object]:
        _exactly(self, InitScript)
        return {"init": self.name, "verb": self.verb, "sudo": self.sudo}

    @classmethod
    def from_json(cls, data: object) -> InitScript:
        name = _field(data, "init", str, ("init", "verb", "sudo"))
        return cls(name, _verb(data), sudo=_field(data, "sudo", bool))


#: The kinds of action a plain form may name, by its kind key: nothing else
#: is ever built from one.
KINDS: dict[str, type[Command] | type[Systemd] | type[InitScript]] = {
    "command": Command,
    "systemd": Systemd,
    "init": InitScript,
}


def action_from_json(data: object) -> Action:
    """The action ``to_json`` gave, rebuilt through its constructor.

    Raises ValueError for anything that is not exactly such a form.
    """
    if type(data) is not dict:
        raise ValueError("a heal action's plain form must be a mapping")
    kinds = [kind for kind in KINDS if kind in data]
    if len(kinds) != 1:
        raise ValueError("a heal action's plain form needs exactly one of command, systemd, init")
    return KINDS[kinds[0]].from_json(data)


def _exactly(action: Action, cls: type) -> None:
    # A subclass may hold more than the plain form says; rebuilt as its
    # base class it would run something else.
    if type(action) is not cls:
        raise ValueError(f"a {type(action).__name__} action has no plain form")


def _field(data: object, key: str, kind: type, keys: tuple[str, ...] = ()) -> Any:
    if type(data) is not dict or (keys and set(data) != set(keys)):
        raise ValueError(f"not the plain form of a heal action: {data!r:.80}")
    value = data[key]
    if type(value) is not kind:
        raise ValueError(f"a heal action's {key} must be a {kind.__name__}")
    return value


def _verb(data: object) -> str:
    verb: str = _field(data, "verb", str)
    # As the config reader demands: a word, never an option for systemctl.
    if not verb or verb.startswith("-"):
        raise ValueError(f"not a verb: {verb!r}")
    return verb
