from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import guanxi

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def crm() -> Iterator[guanxi.Crm]:
    with guanxi.Crm.in_memory(user="alice") as handle:
        yield handle


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "crm.db"


@pytest.fixture
def telco_csv() -> Path:
    return REPO / "tests" / "data" / "telco_churn_first_1000.csv"
