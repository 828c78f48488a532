"""The command-line shell both programs share: subcommands, logging, user errors.

`dgs-desktop` and `dgs-desktop-train` are each a list of `Command`s. `run_cli` builds one
argparse parser with a subparser per command (so `--help` lists them), configures logging
from `-v/--verbose` and `-q/--quiet`, runs the command and maps user errors
(`dgs_desktop.errors.DGSError`) to their exit status with a one-line message. Heavy libraries
are imported inside each command's `run`, so `--help` and argument errors are instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from .. import __version__
from ..errors import EXIT_INTERRUPTED, EXIT_USAGE, DGSError

EXIT_OS_ERROR = 1


# ------------------------------------------------- value parsers (argparse types), both CLIs
def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def probability(text: str) -> float:
    value = non_negative_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def threshold(text: str) -> float:
    """A verdict threshold: a probability in [0, 1] (the verdict is fake when p > threshold)."""
    from ..verdict import check_threshold

    try:
        return check_threshold(non_negative_float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}") from None


class OneLineParser(argparse.ArgumentParser):
    """Argument errors in one line (`prog: error: ...`), like every other user error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None


def _verbosity_options() -> OneLineParser:
    common = OneLineParser(add_help=False)
    group = common.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=0, help="more log messages (-vv: debug)")
    group.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    return common


def build_parser(prog: str, description: str, commands: Sequence[Command]) -> argparse.ArgumentParser:
    common = _verbosity_options()
    parser = OneLineParser(prog=prog, description=description, parents=[common])
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                title="commands", description=", ".join(c.name for c in commands))
    for command in commands:
        child = sub.add_parser(command.name, help=command.help, parents=[common],
                               description=command.description or command.help)
        command.add_arguments(child)
        child.set_defaults(_run=command.run)
    return parser


class _CliLogHandler(logging.StreamHandler):
    """The stderr handler `configure_logging` installs, marked so that a second call replaces it."""

    _dgs_cli = True


def configure_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Library modules log through `logging`; the command line shows INFO and up on stderr."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    handler = _CliLogHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if verbose == 0 else "%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_dgs_cli", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    if verbose < 2:  # third-party chatter stays out of the user's terminal
        for noisy in ("httpx", "urllib3", "huggingface_hub", "PIL", "matplotlib", "filelock"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(prog: str, message: str, code: int) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def run_cli(prog: str, description: str, commands: Sequence[Command], argv: Sequence[str] | None,
            default: Callable[[list[str]], list[str]] | None = None) -> int:
    """Parses `argv`, runs the chosen command, and turns user errors into exit statuses.

    `default(argv)` may rewrite an argv that names no command (e.g. prepend the default
    command); it raises `UsageError` for something that looks like a mistyped command.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog, description, commands)
    try:
        if default is not None:
            argv = default(argv)
    except DGSError as exc:
        return fail(prog, str(exc), exc.exit_code)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad argument (already reported in one line)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if getattr(args, "_run", None) is None:
        parser.print_help(sys.stderr)
        return fail(prog, f"choose a command: {', '.join(c.name for c in commands)}", 2)
    configure_logging(args.verbose, args.quiet)
    try:
        return int(args._run(args))
    except DGSError as exc:
        return fail(prog, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # disk full, permission denied, ... : one line, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        return fail(prog, f"{exc.strerror or exc}{where}", EXIT_OS_ERROR)


_VERBOSITY = frozenset({"-q", "--quiet", "--verbose"})
_TOP_LEVEL = frozenset({"-h", "--help", "--version"})


def with_default_command(argv: Sequence[str], commands: Sequence[Command], default: str,
                         accept_paths: bool = False) -> list[str]:
    """`argv` with `default` inserted where it names no command.

    No command is named when the first token after the verbosity flags is an option (or
    there is none), or, with `accept_paths`, an existing file or folder (`dgs-desktop
    photo.jpg`). Any other word is a mistyped command and a `UsageError`, never a path.
    """
    from ..errors import UsageError

    argv = list(argv)
    names = {c.name for c in commands}
    start = 0
    while start < len(argv) and (argv[start] in _VERBOSITY or re.fullmatch(r"-v+", argv[start])):
        start += 1
    if start == len(argv):
        return argv[:start] + [default]
    token = argv[start]
    if token in names or token in _TOP_LEVEL:
        return argv
    if token.startswith("-") or (accept_paths and os.path.lexists(os.path.expanduser(token))):
        return argv[:start] + [default] + argv[start:]
    hint = " (or give existing files and folders to open in the window)" if accept_paths else ""
    raise UsageError(f"unknown command {token!r}; the commands are: {', '.join(sorted(names))}{hint}")
