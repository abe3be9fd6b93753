"""The settings a cluster of replicas is tuned with, read from the environment."""

from __future__ import annotations

import pytest

from crmsync.config import Config, ConfigError

from .conftest import CLIENT_SECRET, JWT_SECRET, WEBHOOK_SECRET

BASE = {"CRMSYNC_CRM_CLIENT_SECRET": CLIENT_SECRET, "CRMSYNC_JWT_SECRET": JWT_SECRET,
        "CRMSYNC_WEBHOOK_SECRET": WEBHOOK_SECRET}  # fmt: skip


def test_heartbeat_death_and_retry_schedule_are_read_from_the_environment() -> None:
    default = Config.from_env(BASE)
    assert (default.replica_heartbeat, default.replica_dead_after) == (2.0, 10.0)
    assert default.job_backoff == (30.0, 120.0, 600.0, 1800.0, 7200.0)
    config = Config.from_env({**BASE, "CRMSYNC_REPLICA_HEARTBEAT": "0.5", "CRMSYNC_REPLICA_DEAD_AFTER": "3",
                              "CRMSYNC_JOB_BACKOFF": "1, 5 60"})  # fmt: skip
    assert (config.replica_heartbeat, config.replica_dead_after, config.job_backoff) == (0.5, 3.0, (1.0, 5.0, 60.0))


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"CRMSYNC_REPLICA_HEARTBEAT": "0"}, "CRMSYNC_REPLICA_HEARTBEAT must be at least 0.1"),
        (
            {"CRMSYNC_REPLICA_HEARTBEAT": "5", "CRMSYNC_REPLICA_DEAD_AFTER": "6"},
            "CRMSYNC_REPLICA_DEAD_AFTER must be at least 10",
        ),
        ({"CRMSYNC_JOB_BACKOFF": "30,soon"}, "CRMSYNC_JOB_BACKOFF must be numbers of seconds"),
        ({"CRMSYNC_JOB_BACKOFF": "30,0"}, "CRMSYNC_JOB_BACKOFF must hold seconds between 0 and 86400"),
    ],
)
def test_a_bad_cluster_setting_names_the_variable(override: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Config.from_env({**BASE, **override})
