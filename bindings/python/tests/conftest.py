from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import guanxi

REPO = Path(__file__).resolve().parents[3]


def postgres_server() -> str | None:
    """The PostgreSQL server the tests may use (`.ci/run` starts one); under CI=true a
    missing server is a failure, not a skip."""
    server = os.environ.get("GUANXI_TEST_POSTGRES")
    if not server and os.environ.get("CI") == "true":
        raise RuntimeError("CI=true but GUANXI_TEST_POSTGRES names no PostgreSQL server")
    return server or None


def _psql(server: str, sql: str) -> None:
    subprocess.run(["psql", server, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True, capture_output=True)


def _throwaway_database() -> Iterator[str]:
    server = postgres_server()
    if server is None:
        pytest.skip("GUANXI_TEST_POSTGRES is not set")
    name = f"py_{uuid.uuid4().hex[:12]}"
    _psql(server, f"CREATE DATABASE {name}")
    try:
        yield " ".join([part for part in server.split() if not part.startswith("dbname=")] + [f"dbname={name}"])
    finally:
        _psql(server, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def postgres_location() -> Iterator[str]:
    """A throw-away database on the test server, as the connection string `Crm.open` takes."""
    yield from _throwaway_database()


@pytest.fixture
def other_postgres_location() -> Iterator[str]:
    """A second throw-away database (a restore target, say)."""
    yield from _throwaway_database()


def psql_text(location: str, sql: str) -> str:
    """What a query on the server returns, as text: what someone with the database reads."""
    done = subprocess.run(["psql", location, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True, capture_output=True)
    return done.stdout.decode()


@pytest.fixture(params=["memory", "postgres"])
def crm(request: pytest.FixtureRequest) -> Iterator[guanxi.Crm]:
    """The same tests on the in-memory store and on PostgreSQL (the SQLite file has tests of
    its own, through `db_path`)."""
    if request.param == "memory":
        with guanxi.Crm.in_memory(user="alice") as handle:
            yield handle
    else:
        location = request.getfixturevalue("postgres_location")
        with guanxi.Crm.open(location, user="alice") as handle:
            yield handle


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "crm.db"


@pytest.fixture
def telco_csv() -> Path:
    return REPO / "tests" / "data" / "telco_churn_first_1000.csv"
