"""Shared pytest configuration: the fixture plugins every test package can use."""

pytest_plugins = [
    "fixtures.wheels",
    "fixtures.index",
    "fixtures.environments",
    "fixtures.installed",
    "fixtures.swarm",
]
