-- What the IMAP transport remembers of a mailbox folder, so that no mail is taken twice.
-- A folder is named by a hash (of host, port, user and folder name), never by an address; a
-- message by its UID and the hash of its Message-ID (the same hash as reply_verdicts'), never
-- by anything it says.

-- Per folder: its UIDVALIDITY and the highest UID looked at (mail that is no reply to us is
-- left in the folder and not looked at again).
CREATE TABLE imap_folders (
    mailbox_key  text PRIMARY KEY,
    uidvalidity  bigint NOT NULL,
    last_uid     bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Per message taken from a folder: stored in inbound_mail (inbound_id), or a copy of a mail
-- taken before (same Message-ID: inbound_id NULL, not stored again). Either way it is moved
-- to the processed folder; a row whose UID is still in the folder is a move still to do.
CREATE TABLE imap_messages (
    mailbox_key      text NOT NULL,
    uidvalidity      bigint NOT NULL,
    uid              bigint NOT NULL,
    message_id_hash  text NOT NULL,
    inbound_id       bigint,
    seen_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_key, uidvalidity, uid)
);
CREATE INDEX imap_messages_by_message ON imap_messages (message_id_hash);
CREATE INDEX imap_messages_by_time ON imap_messages (seen_at);
