"""What may reach a log line: user ids only as salted hashes, secrets never.

`user_ref` is what our own log calls print instead of a user id: stable (the same user gives the
same reference in every process that shares STREAMS_LOG_SALT, so an engineer can follow a user
through the logs, `streams log-ref USER_ID` tells which reference to grep for) and keyed, so a
list of guessed ids cannot be matched against the logs without the salt.

`redact_secrets` covers what we do not write ourselves: kafka-python, for one, logs an admin
client's whole configuration (SASL password included) at DEBUG. It hooks the log record factory,
so every record of every logger is cleaned when it is created, before any handler sees it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

REDACTED = "***"
_secrets: set[str] = set()
_installed = False


def user_ref(user_id: str | bytes | None, salt: str) -> str:
    """`user:<12 hex>`; the key of a dead letter may not even be text, so bytes are accepted."""
    if user_id is None:
        return "user:none"
    raw = user_id if isinstance(user_id, bytes) else user_id.encode("utf-8", "surrogatepass")
    key = hashlib.blake2b(salt.encode("utf-8", "surrogatepass"), digest_size=32).digest()
    return "user:" + hashlib.blake2b(raw, key=key, digest_size=6).hexdigest()


def redact_secrets(secrets: Iterable[str]) -> None:
    """From now on, replace each of `secrets` by *** in every log record of this process."""
    global _installed
    _secrets.update(s for s in secrets if s)
    if _installed or not _secrets:
        return
    make_record = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _scrub(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: leave it to logging's own error handling
        return
    cleaned = scrub_text(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[1] is not None:
        # The traceback is formatted later by a handler; format it now, cleaned, and keep the text.
        record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))


def scrub_text(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: one may contain another
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
