"""`sandu …` in the test's own process: the console entry point itself (`sandu.cli.main.main`, with its mapping of
errors to exit code 2) under click's CliRunner isolation — stdin, stdout, stderr and the environment replaced for the
call, the settings read afresh from that environment, `cwd` the working directory. A result with the fields of a
`subprocess.CompletedProcess` that the tests read (returncode, stdout, stderr), so that a case reads the same either
way; an error that the entry point does not turn into an exit code propagates (a subprocess would print a traceback).

A process costs a second of imports per command; each test file that uses this keeps at least one real `sandu`
process as well, so that the installed command and its process boundary stay tested."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Ran:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def sandu(args: list[str], *, env: dict[str, str] | None = None, input: str = "", cwd: Path | None = None) -> Ran:
    from click.testing import CliRunner

    from sandu.cli import main as cli
    from sandu.settings import get_settings

    old_argv, old_cwd = sys.argv, os.getcwd()
    code = 0
    with CliRunner().isolation(input=input, env={"COLUMNS": "200", **(env or {})}) as (out, err, _):
        get_settings.cache_clear()
        sys.argv = ["sandu", *args]
        if cwd is not None:
            os.chdir(cwd)
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = old_argv
            os.chdir(old_cwd)
            get_settings.cache_clear()
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return Ran(list(args), code, stdout, stderr)
