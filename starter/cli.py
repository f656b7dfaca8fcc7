"""The ``tandem`` command: every operator action, one subcommand each."""

from __future__ import annotations

import logging
import os
import sys

import typer

from starter import (
    codec_cmd,
    dev_cmd,
    digest_cmd,
    doctor_cmd,
    gateway_cmd,
    import_cmd,
    mail_cmd,
    mailer_cmd,
    operate_cmds,
    privacy_cmds,
    reply_cmd,
    report_cmd,
    retention_cmd,
    tandem_cmds,
    who_cmd,
    worker_cmd,
)
from starter.common import err_console

app = typer.Typer(
    help="Run mentoring tandems on Temporal: import people, enrol mentees, watch them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("dev")(dev_cmd.dev)
app.command("worker")(worker_cmd.worker)
app.command("gateway")(gateway_cmd.gateway)
app.command("mailer")(mailer_cmd.mailer)
app.command("codec-server")(codec_cmd.codec_server)
app.add_typer(import_cmd.app, name="import")
app.command("enroll")(tandem_cmds.enroll)
app.command("status")(tandem_cmds.status)
app.command("list")(tandem_cmds.list_tandems)
for name in (
    "advance",
    "pause",
    "resume",
    "end",
    "rematch",
    "approve",
    "reject",
    "cadence",
    "answer",
    "retry",
):
    app.command(name)(getattr(operate_cmds, name))
app.add_typer(mail_cmd.app, name="mail")
app.add_typer(reply_cmd.app, name="reply")
app.command("doctor")(doctor_cmd.doctor)
app.command("export")(privacy_cmds.export)
app.command("forget")(privacy_cmds.forget)
app.command("who")(who_cmd.who_cmd)
app.command("retention")(retention_cmd.retention)
app.command("report")(report_cmd.report)
app.command("digest")(digest_cmd.digest)


def main() -> None:
    """Entry point of ``tandem``. Leaves with ``os._exit`` once the command is done: Temporal's
    client keeps native threads that can abort a normal interpreter shutdown (sdk-python #300);
    every command has finished its work and cleanup by then."""
    code = 0
    try:
        result = app(standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except typer.TyperException as err:  # bad usage: one line, not a box
        ctx = getattr(err, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        err_console.print(f"error: {err.format_message()}{hint}", highlight=False, soft_wrap=True)
        code = err.exit_code
    except typer.Abort:
        code = 130
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    main()
