"""The `vlmlab` command: one Typer app whose sub-apps only parse arguments and call study code.

A `VlmlabError` anywhere below becomes one line on stderr and exit code 2; `--debug` shows the
traceback instead. Sub-app modules import heavy libraries (torch, transformers) inside their
commands so that `vlmlab --help` stays fast.
"""

from __future__ import annotations

import errno
import importlib
import sys
import traceback

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
    library_output: bool = typer.Option(False, "--library-output",
                                        help="Show the progress bars and warnings of transformers/torch (hidden by default)."),
) -> None:
    """Reproducible experiments with vision-language models."""
    _state["debug"] = debug
    if not library_output:
        quiet_libraries()


def quiet_libraries() -> None:
    """Hide library progress bars and warnings (transformers' "Loading weights" bars, FutureWarnings,
    torchao/torch deprecation notices): vlmlab's own progress lines say what is happening, and
    these otherwise interleave with them in logs. `vlmlab --library-output ...` shows them."""
    import logging
    import os
    import warnings

    # `datasets` reads these once, when it is imported (lazily, by the data readers), and then sets
    # its own log level, so they are its switches; the user's own settings win. Importing datasets
    # here only to quiet it would cost every command ~1 s.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("DATASETS_VERBOSITY", "error")
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
        sys.modules["datasets"].logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*[Tt]orchao.*")
    for name in ("transformers", "torchao", "torch.utils._pytree", "accelerate", "sentence_transformers", "huggingface_hub", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # transformers is a dependency; guard only for a broken install
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


for _module, _name in SUBAPPS:
    _sub = importlib.import_module(f"vlmlab.cli.{_module}")
    app.add_typer(_sub.app, name=_name)


# A full disk or a read-only folder can surface in any writer; its message is one line too.
_OS_ADVICE = {
    errno.ENOSPC: "free disk space or write elsewhere",
    errno.EDQUOT: "free space in your quota or write elsewhere",
    errno.EROFS: "choose a writable output folder",
    errno.EACCES: "choose a folder you may write to",
    errno.EPERM: "choose a folder you may write to",
}


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: exit 2 for a problem with the user's input or disk, with one line.

    `--debug` prints the traceback as well but keeps the exit code.
    """
    args = sys.argv[1:] if argv is None else argv
    _state["debug"] = "--debug" in args
    try:
        app(args=args, prog_name="vlmlab")
    except VlmlabError as exc:
        _fail(str(exc))
    except OSError as exc:
        if exc.errno not in _OS_ADVICE:
            raise
        where = exc.filename or "output"
        _fail(f"{where}: {exc.strerror or type(exc).__name__}; {_OS_ADVICE[exc.errno]}")
    except KeyboardInterrupt:
        typer.echo("interrupted; re-run the same command to resume", err=True)
        sys.exit(130)


def _fail(message: str) -> None:
    if _state["debug"]:
        traceback.print_exc()
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    sys.exit(2)
