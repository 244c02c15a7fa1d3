"""The rules for a check's ``verify:`` and ``report_to:``, every problem at FILE:LINE.

``report_to:`` maps a kind (``nagios``; ``selfheal.edges.targets`` lists
them) to its settings, checked by that kind's own class, the one the
runner reports through; a problem is reported at the line of the key the
class names. ``report_to:`` reports the re-check's result, so it needs
``verify: true``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    # selfheal.config.reader.Reader, which imports this module: no type import back.
    Reader = Any


def read_report_to(
    reader: Reader, key_node: object, node: object, where: str, verify: bool
) -> dict[str, object]:
    """The check's ``report_to:`` in its plain form."""
    from selfheal.config.schema import plain_copy
    from selfheal.edges.targets import KINDS, target

    what = f"{where}: report_to"
    if not verify:
        raise reader.error(f"{what} reports the re-check's result: it needs 'verify: true'", key_node)
    plain: dict[str, object] = {}
    for kind, (kind_node, value_node) in reader.mapping(node, what).items():
        if kind not in KINDS:
            known = ", ".join(sorted(KINDS))
            reader.report(reader.error(f"{what}: unknown target {kind!r} (known: {known})", kind_node))
            continue
        fields = reader.mapping(value_node, f"{what}.{kind}")
        try:
            settings = plain_copy({key: reader.value(value) for key, (_, value) in fields.items()})
            settings = target(kind, settings).to_json()  # as the target took it: "5s" is 5.0 seconds
        except ValueError as exc:
            # A target may name its key in full (Icinga's: "report_to.icinga.url: ..."): said once.
            said = str(exc).removeprefix(f"report_to.{kind}.")
            key = said.split(":", 1)[0]
            at = fields[key][1] if key in fields else value_node
            reader.report(
                reader.error(f"{what}.{kind}.{said}" if key in fields else f"{what}.{kind}: {said}", at)
            )
            continue
        plain[kind] = settings
    return plain
