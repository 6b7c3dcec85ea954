"""`scripts/ensure-services` decides how to bring PostgreSQL and Redis up on this machine."""

from __future__ import annotations

import dataclasses

import pytest

from scripts.ensure_services import ACTIONS, Machine, Plan, plan

pytestmark = pytest.mark.unit

#: A machine with nothing: no services, not root, no Docker.
BARE = Machine(
    pg_up=False,
    redis_up=False,
    pg_installed=False,
    redis_installed=False,
    root_on_apt=False,
    docker=False,
)


def _on(**facts: bool) -> Plan:
    return plan(dataclasses.replace(BARE, **facts))


def test_services_that_answer_need_nothing() -> None:
    assert _on(pg_up=True, redis_up=True) == Plan(())


def test_installed_services_are_started() -> None:
    assert _on(pg_installed=True, redis_installed=True).steps == ("start-pg", "start-redis")


def test_root_on_debian_or_ubuntu_installs_what_is_missing_then_starts_it() -> None:
    assert _on(root_on_apt=True, redis_installed=True).steps == (
        "install-pg",
        "start-pg",
        "start-redis",
    )


def test_docker_starts_only_what_is_missing_when_nothing_can_be_installed() -> None:
    assert _on(pg_up=True, docker=True).steps == ("compose-redis",)
    assert _on(docker=True).steps == ("compose-pg", "compose-redis")


def test_apt_as_root_is_preferred_to_docker() -> None:
    assert "compose-pg" not in _on(root_on_apt=True, docker=True).steps


def test_otherwise_one_line_says_what_to_install() -> None:
    both, redis = _on(), _on(pg_installed=True)

    assert both.cannot.startswith("PostgreSQL and Redis are not installed here: install")
    assert redis.cannot.startswith("Redis is not installed here: install")
    assert "\n" not in both.cannot
    assert "Docker" in both.cannot


def test_every_step_a_plan_can_name_has_an_action() -> None:
    machines = [
        dataclasses.replace(BARE, **{fact: True})
        for fact in ("pg_installed", "redis_installed", "root_on_apt", "docker")
    ]

    for m in machines:
        assert set(plan(m).steps) <= set(ACTIONS)
