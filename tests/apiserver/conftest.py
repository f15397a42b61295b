"""Fixtures: the seed posts ingested once (in a subprocess), and ``python app.py api`` servers over them."""

from __future__ import annotations

import pytest

from tests.support.apiserver import API_KEY, OTHER_KEY, ApiServer, copy_home, ingest_home, start_api, stop_api


@pytest.fixture(scope="session")
def seed_home(tmp_path_factory, seed_data_dir):
    """A home whose embedded store holds data/'s two seed posts; copy it before a process opens it."""
    return ingest_home(tmp_path_factory.mktemp("api-seed") / "home", seed_data_dir)


@pytest.fixture(scope="session")
def fresh_home(seed_home, tmp_path_factory):
    """``fresh_home(name)``: a private copy of the seed home for one server process."""

    def make(name: str):
        return copy_home(seed_home, tmp_path_factory.mktemp(f"api-{name}") / "home")

    return make


@pytest.fixture(scope="session")
def api(fresh_home, seed_data_dir):
    """``python app.py api`` over the seed posts, extractive backend, two API keys."""
    server = start_api(fresh_home("main"), seed_data_dir, keys=(API_KEY, OTHER_KEY))
    yield server
    stop_api(server)


@pytest.fixture
def start_api_server(seed_data_dir):
    """``start_api_server(home, keys=..., **env)`` -> a running ApiServer, stopped after the test."""
    started: list[ApiServer] = []

    def start(home, keys=(), **env):
        server = start_api(home, seed_data_dir, keys=keys, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_api(server)
