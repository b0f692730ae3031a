from __future__ import annotations

import pytest

from streams.deliver.config import DeliverConfig

ENV = {"STREAMS_DELIVER_URL": "https://hooks.example/in", "STREAMS_DELIVER_SECRET": "whsec_c2VjcmV0"}


def test_url_and_secrets_come_from_the_environment_and_stay_out_of_repr() -> None:
    config = DeliverConfig.from_env({**ENV, "STREAMS_DELIVER_API_KEY": "key-1"}, batch_size=5, backfill=None)
    assert config.url == "https://hooks.example/in"
    assert config.batch_size == 5 and config.backfill is False
    assert sorted(config.secrets()) == ["key-1", "whsec_c2VjcmV0"]
    assert "whsec_c2VjcmV0" not in repr(config) and "key-1" not in repr(config)


@pytest.mark.parametrize(
    ("env", "changes", "message"),
    [
        ({}, {}, "STREAMS_DELIVER_URL"),
        ({"STREAMS_DELIVER_URL": "https://x"}, {}, "STREAMS_DELIVER_SECRET"),
        ({"STREAMS_DELIVER_URL": "https://x"}, {"format": "klaviyo"}, "STREAMS_DELIVER_API_KEY"),
        ({**ENV, "STREAMS_DELIVER_URL": "ftp://x"}, {}, "https://"),
        (ENV, {"format": "braze"}, "webhook, klaviyo, segment"),
        (ENV, {"sources": ("clicks",)}, "promotion-triggers"),
        (ENV, {"batch_size": 0}, "positive"),
    ],
)
def test_a_bad_setting_is_refused_with_what_to_set(
    env: dict[str, str], changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DeliverConfig.from_env(env, **changes)
