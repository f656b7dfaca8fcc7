"""The reply gateway: mail in (SMTP/LMTP, later IMAP) -> durable inbox -> pipeline -> the
tandem workflow's ``answer`` update. Bodies are read once and never stored or logged."""
