"""The `vlmlab` command: one Typer app whose sub-apps only parse arguments and call study code.

A `VlmlabError` anywhere below becomes one line on stderr and exit code 2; `--debug` shows the
traceback instead. Sub-app modules import heavy libraries (torch, transformers) inside their
commands so that `vlmlab --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

from vlmlab import __version__
from vlmlab.errors import VlmlabError

app = typer.Typer(
    name="vlmlab",
    help="Reproducible experiments with vision-language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"debug": False}

# (module under vlmlab.cli, command name). Only sub-apps that do something are listed.
SUBAPPS: list[tuple[str, str]] = [
    ("runs", "runs"),
    ("rating", "rating"),
    ("data", "data"),
    ("icl", "icl"),
    ("score", "score"),
    ("caption", "caption"),
    ("models", "models"),
    ("toyworld", "toyworld"),
    ("demo", "demo"),
    ("toymodels", "toymodels"),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vlmlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Reproducible experiments with vision-language models."""
    _state["debug"] = debug


for _module, _name in SUBAPPS:
    _sub = importlib.import_module(f"vlmlab.cli.{_module}")
    app.add_typer(_sub.app, name=_name)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    _state["debug"] = "--debug" in args
    try:
        app(args=args, prog_name="vlmlab")
    except VlmlabError as exc:
        if _state["debug"]:
            raise
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted; re-run the same command to resume", err=True)
        sys.exit(130)
