"""Tamper-evident change log, online backup and verified restore, from Python."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import guanxi


def test_change_log_verifies_and_detects_tampering(db_path: Path) -> None:
    with guanxi.Crm.open(db_path, user="alice") as crm:
        for name in ("甲", "乙", "丙"):
            crm.customers.create(name)
        check = crm.audit.verify()
        assert check.intact and bool(check) and check.entries == 3 and check.broken_at is None
        assert len(check.head or "") == 64
        raw = sqlite3.connect(db_path)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("UPDATE change_log SET actor = 'mallory' WHERE seq = 2")
        raw.executescript("DROP TRIGGER change_log_no_update; UPDATE change_log SET actor = 'mallory' WHERE seq = 2;")
        raw.close()
        broken = crm.audit.verify()
        assert not broken.intact and broken.broken_at == 2 and "edited" in (broken.reason or "")
        assert repr(broken) == "AuditCheck(entries=3, intact=False, broken_at=2)"


def test_backup_and_restore(tmp_path: Path) -> None:
    with guanxi.Crm.open(tmp_path / "crm.db", user="alice") as crm:
        c = crm.customers.create("华为技术有限公司", tags=["VIP"])
        check = crm.files.backup(tmp_path / "backup.db")
        assert check.intact and check.entries == 2  # the create and the backup itself
        with pytest.raises(guanxi.InvalidStateError):
            crm.files.backup(tmp_path / "backup.db")  # never overwrites
    backup_bytes = (tmp_path / "backup.db").read_bytes()
    restored = guanxi.Crm.restore(tmp_path / "backup.db", tmp_path / "restored.db")
    assert restored == check
    # Reading and restoring a backup leaves its bytes as they were and no file beside it.
    assert (tmp_path / "backup.db").read_bytes() == backup_bytes
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("backup", "restored"))) == [
        "backup.db",
        "restored.db",
    ]
    with guanxi.Crm.open(tmp_path / "restored.db", user="bob") as again:
        assert again.customers.get(c.id).tags == ["VIP"]
        assert again.audit.entries()[-1].action == "export"


def test_backup_of_postgres_restores_into_a_file_and_into_a_server(
    tmp_path: Path, postgres_location: str, other_postgres_location: str
) -> None:
    key = guanxi.generate_field_key()
    with guanxi.Crm.open(postgres_location, user="alice", field_key=key) as crm:
        c = crm.customers.create("华为技术有限公司", tags=["VIP"], contacts=[{"name": "张伟", "phone": "13812345678"}])
        check = crm.files.backup(tmp_path / "backup.db")
        assert check.intact and check.entries == 3  # the customer, its contact, the backup
    assert b"13812345678" not in (tmp_path / "backup.db").read_bytes()
    assert guanxi.Crm.restore(tmp_path / "backup.db", tmp_path / "restored.db") == check
    with guanxi.Crm.open(tmp_path / "restored.db", user="bob", field_key=key) as again:
        assert again.customers.get(c.id).tags == ["VIP"]
    with pytest.raises(guanxi.EncryptionError):
        guanxi.Crm.restore(tmp_path / "backup.db", other_postgres_location)  # sealed: the key is needed
    assert guanxi.Crm.restore(tmp_path / "backup.db", other_postgres_location, field_key=key) == check
    with guanxi.Crm.open(other_postgres_location, user="bob", field_key=key) as server:
        assert server.contacts.find_by_phone("13812345678")[0].name == "张伟"
        assert server.audit.verify() == check


RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of RFC 6238's "12345678901234567890"


def test_password_hashing() -> None:
    phc = guanxi.hash_password("correct horse battery staple")
    assert phc.startswith("$argon2id$")
    assert guanxi.verify_password("correct horse battery staple", phc)
    assert not guanxi.verify_password("wrong", phc)
    with pytest.raises(guanxi.ValidationError) as info:
        guanxi.verify_password("x", "not a hash")
    assert info.value.field == "password_hash"


def test_totp_matches_rfc_6238() -> None:
    import datetime

    at = datetime.datetime.fromtimestamp(59, tz=datetime.timezone.utc)
    assert guanxi.totp_code(RFC_SECRET, at, digits=8) == "94287082"
    late = at + datetime.timedelta(seconds=30)
    assert guanxi.verify_totp(RFC_SECRET, "94287082", late, digits=8, drift_steps=1)
    assert not guanxi.verify_totp(RFC_SECRET, "94287082", late, digits=8, drift_steps=0)
    secret = guanxi.generate_totp_secret()
    now = datetime.datetime.now(datetime.timezone.utc)
    assert guanxi.verify_totp(secret, guanxi.totp_code(secret, now), now)
    with pytest.raises(guanxi.ValidationError):
        guanxi.totp_code("short", now)
