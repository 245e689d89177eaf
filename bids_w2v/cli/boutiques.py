"""Generate the Boutiques descriptor of ``bids-w2v`` from its argparse parser.

``python -m bids_w2v.cli.boutiques > boutiques.json`` regenerates the descriptor shipped at the
root of the repository, so that it describes exactly the flags of the command line (a test
compares the two). Every argparse action becomes one Boutiques input, except ``--help`` and
``--version``, which do not take part in a run.

Mapping (argparse -> Boutiques 0.5):

- ``store_true``/``store_false``/``store_const``/``count`` -> ``Flag`` (``-v`` once);
  ``BooleanOptionalAction`` -> ``Flag`` with the form that changes the default
  (``--no-noise-ceiling`` when on by default);
- ``nargs`` ``+``/``*`` -> ``"list": true``; ``append`` -> one value (repeat the flag on the
  command line for more);
- ``int`` (and ``positive_int``) -> integer ``Number`` (``minimum`` 1); ``float`` -> ``Number``;
  ``choices`` -> ``value-choices``; everything else -> ``String``, except the input paths
  named in :data:`INPUT_FILES`, which are ``File``.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

from bids_w2v import __version__, errors
from bids_w2v.cli.arguments import positive_int
from bids_w2v.cli.parser import build_parser

#: Environment every run gets (the Dockerfile's ``ENV`` and singularity.def's %environment).
ENVIRONMENT = {
    "NIPYPE_NO_ET": "1",
    "HF_HUB_OFFLINE": "1",
    "MPLBACKEND": "Agg",
}

#: Destinations of path arguments that must exist before the run (Boutiques ``File``).
INPUT_FILES = frozenset({"bids_dir", "use_plugin", "roi_atlas"})

#: Docker image the descriptor runs in (built from the repository's Dockerfile).
CONTAINER_IMAGE = f"bids-w2v:{__version__}"

_SKIPPED = (argparse._HelpAction, argparse._VersionAction)
_FLAG_ACTIONS = (
    argparse._StoreTrueAction,
    argparse._StoreFalseAction,
    argparse._StoreConstAction,
    argparse._CountAction,
    argparse._AppendConstAction,
    argparse.BooleanOptionalAction,
)


def run_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Return the parser's actions that take part in a run (all but help and version).

    Parameters
    ----------
    parser : argparse.ArgumentParser

    Returns
    -------
    list of argparse.Action
    """
    return [action for action in parser._actions if not isinstance(action, _SKIPPED)]


def descriptor_flag(action: argparse.Action) -> str | None:
    """Return the option string the descriptor uses for ``action`` (None if positional).

    The first long option is used (``--participant-label``, not ``--participant_label``);
    for a ``BooleanOptionalAction`` on by default, its ``--no-`` form.

    Parameters
    ----------
    action : argparse.Action

    Returns
    -------
    str or None
    """
    if not action.option_strings:
        return None
    options = list(action.option_strings)
    if isinstance(action, argparse.BooleanOptionalAction):
        negative = [opt for opt in options if opt.startswith("--no-")]
        positive = [opt for opt in options if not opt.startswith("--no-")]
        options = negative if action.default else positive
    longs = [opt for opt in options if opt.startswith("--")]
    return (longs or options)[0]


def _input_id(action: argparse.Action) -> str:
    if isinstance(action, argparse.BooleanOptionalAction) and action.default:
        return f"no_{action.dest}"
    if action.nargs == 0 and action.const is not None and not isinstance(action.const, bool):
        # a constant stored in a shared destination (-q sets the verbosity -v counts)
        return (descriptor_flag(action) or action.dest).lstrip("-").replace("-", "_")
    return action.dest


def _help_text(action: argparse.Action) -> str:
    text = action.help or ""
    try:
        text = text % {**vars(action), "prog": "bids-w2v"}
    except (KeyError, TypeError, ValueError):
        pass
    return " ".join(text.split())


def _name(action: argparse.Action) -> str:
    return _input_id(action).replace("_", " ").capitalize()


def _json_value(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    return value


def action_to_input(action: argparse.Action) -> dict[str, Any]:
    """Describe one argparse action as a Boutiques input.

    Parameters
    ----------
    action : argparse.Action

    Returns
    -------
    dict
        The Boutiques input (``id``, ``name``, ``type``, ``value-key``...).
    """
    item: dict[str, Any] = {
        "id": _input_id(action),
        "name": _name(action),
        "description": _help_text(action),
        "value-key": f"[{_input_id(action).upper()}]",
    }
    if isinstance(action, argparse._AppendAction):
        item["description"] += " (one value here; repeat the flag on the command line for more)"
    flag = descriptor_flag(action)
    if isinstance(action, _FLAG_ACTIONS):
        item["type"] = "Flag"
    elif action.choices is not None:
        item["type"] = "String"
        item["value-choices"] = [_json_value(choice) for choice in action.choices]
    elif action.type in (int, positive_int):
        item.update(type="Number", integer=True)
        if action.type is positive_int:
            item["minimum"] = 1
    elif action.type is float or (
        isinstance(action.default, float) and not isinstance(action.default, bool)
    ):
        item["type"] = "Number"
    elif action.dest in INPUT_FILES:
        item["type"] = "File"
    else:
        item["type"] = "String"
    if action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1):
        item["list"] = True
        if action.nargs == "+":
            item["min-list-entries"] = 1
        if isinstance(action.nargs, int):
            item["min-list-entries"] = item["max-list-entries"] = action.nargs
    if flag is not None:
        item["command-line-flag"] = flag
        item["optional"] = True
        default = action.default
        if item["type"] != "Flag" and default not in (None, [], (), argparse.SUPPRESS):
            if item["type"] == "String" and not item.get("list"):
                default = str(_json_value(default))
            item["default-value"] = _json_value(default)
    return item


def error_codes() -> list[dict[str, Any]]:
    """Exit codes of ``bids-w2v``: those of :mod:`bids_w2v.errors`, argparse's and signals'.

    Returns
    -------
    list of dict
        Boutiques ``error-codes`` entries, sorted by code.
    """
    described: dict[int, list[str]] = {2: ["invalid command line (argparse)"]}
    pending = [errors.BidsW2VError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        doc = (cls.__doc__ or cls.__name__).strip().splitlines()[0].rstrip(".")
        if cls is errors.BidsW2VError:
            doc = "the run failed (one-paragraph message on stderr, no traceback)"
        if cls.exit_code not in described or doc not in described[cls.exit_code]:
            described.setdefault(cls.exit_code, []).append(doc)
    described[130] = ["interrupted (Ctrl-C)"]
    described[128 + signal.SIGTERM] = ["terminated (SIGTERM); no truncated output is left"]
    return [{"code": code, "description": "; ".join(described[code])} for code in sorted(described)]


def build_descriptor(parser: argparse.ArgumentParser | None = None) -> dict[str, Any]:
    """Build the Boutiques descriptor of ``bids-w2v``.

    Parameters
    ----------
    parser : argparse.ArgumentParser, optional
        Defaults to :func:`bids_w2v.cli.parser.build_parser`'s.

    Returns
    -------
    dict
        A Boutiques 0.5 descriptor (positional arguments first, then options in the order
        ``--help`` lists them, grouped as ``--help`` groups them).
    """
    parser = parser or build_parser()
    actions = run_actions(parser)
    inputs = [action_to_input(action) for action in actions]
    positionals = [item for item, a in zip(inputs, actions, strict=True) if not a.option_strings]
    options = [item for item, a in zip(inputs, actions, strict=True) if a.option_strings]
    ids = {id(action): item["id"] for action, item in zip(actions, inputs, strict=True)}
    groups = []
    for group in parser._action_groups:
        members = [ids[id(a)] for a in group._group_actions if id(a) in ids and a.option_strings]
        if members:
            slug = re.sub(r"[^0-9a-z]+", "_", (group.title or "options").lower()).strip("_")
            groups.append({"id": slug, "name": group.title or "Options", "members": members})
    summary = (parser.description or "").split("\n\n")[0]
    return {
        "name": "bids-w2v",
        "tool-version": __version__,
        "schema-version": "0.5",
        "description": " ".join(summary.split()),
        "author": "bids-w2v developers",
        "command-line": " ".join(["bids-w2v"] + [item["value-key"] for item in inputs]),
        "container-image": {"type": "docker", "image": CONTAINER_IMAGE, "entrypoint": True},
        "environment-variables": [
            {"name": name, "value": value} for name, value in ENVIRONMENT.items()
        ],
        "inputs": positionals + options,
        "groups": groups,
        "output-files": [
            {
                "id": "dataset_description",
                "name": "Derivatives dataset description",
                "description": "BIDS-derivatives dataset_description.json of OUTPUT_DIR",
                "path-template": "[OUTPUT_DIR]/dataset_description.json",
            },
            {
                "id": "logs",
                "name": "Run configuration and citation boilerplate",
                "description": "config-*.toml of every run and CITATION.md",
                "path-template": "[OUTPUT_DIR]/logs",
            },
        ],
        "error-codes": error_codes(),
        "tags": {"domain": ["neuroinformatics", "fmri", "bids-app", "speech"]},
    }


def main(argv: list[str] | None = None) -> int:
    """Print the descriptor (``python -m bids_w2v.cli.boutiques > boutiques.json``)."""
    argparse.ArgumentParser(
        prog="python -m bids_w2v.cli.boutiques",
        description="Print bids-w2v's Boutiques descriptor, generated from its parser.",
    ).parse_args(argv)
    json.dump(build_descriptor(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
