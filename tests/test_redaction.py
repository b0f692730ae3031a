"""Logs carry user ids only as salted hashes and never a secret, whichever library writes them."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from streams.config import KafkaSecurity, Settings
from streams.errors import SchemaViolation
from streams.kafka.clients import client_options
from streams.redaction import REDACTED, redact_secrets, user_ref

SASL_PASSWORD = "pw-only-in-this-test-1"


def test_user_ref_is_stable_salted_and_hides_the_id() -> None:
    ref = user_ref("alice@example.com", "salt-a")
    assert ref == user_ref(b"alice@example.com", "salt-a") and ref.startswith("user:")
    assert "alice" not in ref
    assert ref != user_ref("alice@example.com", "salt-b") != user_ref("bob@example.com", "salt-a")
    assert user_ref(b"\xff\xfe not utf-8", "s").startswith("user:") and user_ref(None, "s") == "user:none"


def test_secrets_never_reach_a_log_record(caplog: pytest.LogCaptureFixture) -> None:
    redact_secrets([SASL_PASSWORD])
    log = logging.getLogger("streams.test")
    with caplog.at_level(logging.DEBUG):
        log.info("connecting with %s", {"sasl_plain_password": SASL_PASSWORD})
        log.warning(f"literal {SASL_PASSWORD} in the message")
        try:
            raise RuntimeError(f"auth failed for password {SASL_PASSWORD}")
        except RuntimeError:
            log.exception("broker refused")
    assert SASL_PASSWORD not in caplog.text
    assert caplog.text.count(REDACTED) == 3


def test_kafka_python_logging_its_configuration_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """kafka-python logs an admin client's whole configuration, SASL password included, at DEBUG."""
    security = KafkaSecurity(protocol="SASL_PLAINTEXT", sasl_username="svc", sasl_password=SASL_PASSWORD)
    settings = Settings(bootstrap="127.0.0.1:1", kafka_security=security)  # nothing listens there
    redact_secrets(settings.secrets())
    with caplog.at_level(logging.DEBUG), pytest.raises(KafkaError):
        KafkaAdminClient(**client_options(settings), bootstrap_timeout_ms=300, request_timeout_ms=300)
    assert "sasl_plain_password" in caplog.text  # the configuration line was written ...
    assert SASL_PASSWORD not in caplog.text  # ... without the password


def test_the_workers_dead_letter_log_line_hashes_the_user(caplog: pytest.LogCaptureFixture) -> None:
    from streams.live.checkpoint import Checkpoint
    from streams.live.metrics import WorkerMetrics
    from streams.live.outputs import OutputSink
    from streams.live.records import InputRecord

    sink = OutputSink(replace(Settings(), log_salt="test-salt"), WorkerMetrics())
    record = InputRecord("clicks", 3, 9, 1000, b"jane.doe@example.com", b"\x80")
    error = SchemaViolation("key_mismatch", "key 'jane.doe@example.com' must equal user_id 'x'", "key")
    checkpoint = Checkpoint()
    with caplog.at_level(logging.INFO, logger="streams.live.outputs"):
        sink.dead_letter(checkpoint, record, error)
    assert "jane.doe" not in caplog.text
    assert user_ref(b"jane.doe@example.com", "test-salt") in caplog.text and "key_mismatch" in caplog.text
    # the dead letter itself keeps everything
    assert [r.key for r in checkpoint.outputs] == [b"jane.doe@example.com"]
