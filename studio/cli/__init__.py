"""``anomaly-studio``: the command line. Each sub-command lives in its own module with a ``register``."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from studio import __version__
from studio.errors import StudioError

#: Sub-command modules under ``studio.cli``, each named after its command; each defines ``register(subparsers)``.
COMMAND_MODULES = ("generate", "evaluate", "store", "export", "batch", "train", "fetch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anomaly-studio",
        description="AnomalyControl Studio: synthesise, curate and export labelled defect images.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"studio.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit 0 on success, 2 with one ``error:`` line for anything the user can fix."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.argv = ["anomaly-studio", *(sys.argv[1:] if argv is None else argv)]  # as typed, for hub cards
    try:
        return int(args.func(args) or 0)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `anomaly-studio store list | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
