"""``tandem mailer``: send the mails the workers hand over, against an existing PostgreSQL and
SMTP relay (with ``TANDEM_MAIL_DELIVERY=mailer`` on the workers)."""

from __future__ import annotations

import mailer as mailer_module
from starter.common import run


def mailer() -> None:
    """Send the mails the workers hand over (scale out by starting more). Stops cleanly on
    Ctrl-C or SIGTERM, after the sends it began."""
    run(mailer_module.main())
