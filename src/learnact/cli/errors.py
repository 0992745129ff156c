"""Turn library errors into one readable line and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from ..exceptions import LearnactError

__all__ = ["run_cli"]

_USER_ERRORS = (LearnactError, ValueError, TypeError, FileNotFoundError, PermissionError, NotADirectoryError,
                IsADirectoryError)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def run_cli(app: Callable[..., object], argv: list[str] | None = None) -> int:
    """Run a click/typer app; user errors print ``learnact: error: ...`` and return 2."""
    try:
        result = app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        print("learnact: interrupted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("learnact: interrupted; finished runs are kept, rerun to resume", file=sys.stderr)
        return 130
    except _USER_ERRORS as exc:
        print(f"learnact: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return int(result) if isinstance(result, int) else 0
