"""Users, departments, roles, data scopes, masking, elevation and field encryption, from Python."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

import guanxi

SOON = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=10)


PASSWORD = "correct horse battery"


def proven(handle: guanxi.Crm) -> guanxi.Crm:
    """The handle's user, elevated by their password (set first, if they have none)."""
    if not handle.access.credentials(handle.user)["password"]:
        handle.access.set_password(handle.user, PASSWORD)
    return handle.access.elevate(password=PASSWORD)


def organise(crm: guanxi.Crm) -> guanxi.Crm:
    """Turns access control on: root administers, li manages 华东, wang sells in 上海, ma markets."""
    root = proven(crm.as_user("root"))
    root.access.set_department("east", "华东")
    root.access.set_department("sh", "上海", parent="east")
    root.access.set_user("root", "管理员", roles=["administrator"])
    root.access.set_user("li", "李经理", department="east", roles=["sales_manager"])
    root.access.set_user("wang", "王伟", department="sh", roles=["sales_rep"])
    root.access.set_user("ma", "马", roles=["marketing"])
    return root


def test_scopes_masks_and_elevation(db_path: Path) -> None:
    with guanxi.Crm.open(db_path, user="root") as crm:
        root = organise(crm)
        wang, li, ma = crm.as_user("wang"), crm.as_user("li"), crm.as_user("ma")
        mine = wang.customers.create(
            "王的客户", contacts=[{"name": "张伟", "phones": ["13812345678"], "id_number": "11010519491231002x"}]
        )
        other = root.customers.create("总部客户")
        assert mine.department == "sh"  # the owner's department by default

        # Lists, counts and single reads agree: wang sees his own, li the 华东 tree.
        assert [c.code for c in wang.customers.list_all()] == [mine.code]
        assert li.customers.count() == 1 and ma.customers.count() == 2
        with pytest.raises(guanxi.PermissionDeniedError) as denied:
            wang.customers.get(other.id)
        assert denied.value.action == "read"

        # explain says why.
        why = wang.access.explain("read", "customer", record_id=other.id)
        assert why["allowed"] is False and "owned by root" in why["reasons"][0]

        # Marketing sees phones masked, on every path.
        assert [p for c in ma.contacts.list(mine.id) for p in c.phones] == ["138****5678"]
        assert ma.contacts.find_by_phone("13812345678")[0].phones == ["138****5678"]
        assert ma.contacts.find_by_id_number("11010519491231002X")[0].id_number is None  # hidden
        assert wang.contacts.list(mine.id)[0].id_number == "11010519491231002X"
        assert "13812345678" not in str(ma.customers.timeline(mine.id))

        # Sensitive operations need elevation; a typed exception names the action.
        with pytest.raises(guanxi.ElevationRequiredError) as needs:
            li.customers.export()
        assert needs.value.action == "export"
        assert isinstance(needs.value, guanxi.PermissionDeniedError)
        table = pa.table(proven(li).customers.export())
        assert table.num_rows == 1
        with pytest.raises(guanxi.ElevationRequiredError):
            li.customers.delete(mine.id, mine.version)
        proven(li).customers.delete(mine.id, mine.version)

        # Custom roles with field rules; the audit log records every access change.
        root.access.set_role(
            "south_reader",
            "华南只读",
            grants=[("customer", ["read"], "region"), ("contact", ["read"], "region")],
            fields=[("contact", "emails", "hidden")],
        )
        root.access.set_user("sun", "孙", roles=["south_reader"], regions=["华南"])
        model = root.access.model()
        assert set(model["users"]) == {"root", "li", "wang", "ma", "sun"}
        assert model["users"]["sun"]["regions"] == ["华南"]
        with pytest.raises(guanxi.InvalidStateError):
            root.access.remove_role("south_reader")  # sun holds it
        with pytest.raises(guanxi.ValidationError) as bad:
            root.access.set_role("x", "X", grants=[("customer", ["fly"], "all")])
        assert bad.value.field == "grants[0].actions"
        entities = {e.entity for e in root.audit.entries()}
        assert {"user", "department", "role"} <= entities
        assert root.audit.verify().intact


def test_reads_of_phones_in_clear_are_audited(crm: guanxi.Crm) -> None:
    root = organise(crm)
    wang = crm.as_user("wang")
    c = wang.customers.create("甲", contacts=[{"name": "张伟", "phones": ["13812345678"]}])
    wang.contacts.list(c.id)
    reads = [e for e in root.audit.entries(customer_id=c.id) if e.action == "read"]
    assert [e.user for e in reads] == ["wang"]


def test_field_encryption_and_key_rotation(db_path: Path) -> None:
    key = guanxi.generate_field_key()
    assert len(key) == 32
    with guanxi.Crm.open(db_path, user="admin", field_key=key) as crm:
        crm.customers.create("甲", contacts=[{"name": "张伟", "phones": ["138 1234 5678"], "id_number": "11010519491231002X"}])
        assert crm.contacts.find_by_phone("+8613812345678")[0].name == "张伟"
        new_key = guanxi.generate_field_key()
        assert proven(crm).access.rotate_field_key(new_key) == 1
    assert b"13812345678" not in db_path.read_bytes()
    assert b"11010519491231002X" not in db_path.read_bytes()
    with pytest.raises(guanxi.EncryptionError) as wrong:
        guanxi.Crm.open(db_path, user="admin", field_key=key)
    assert wrong.value.kind == "wrong_key"
    with pytest.raises(guanxi.EncryptionError) as short:
        guanxi.Crm.open(db_path, user="admin", field_key=b"short")
    assert short.value.kind == "bad_key_length"
    with guanxi.Crm.open(db_path, user="admin", field_key=new_key) as crm:
        assert crm.contacts.find_by_phone("13812345678")[0].phones == ["+8613812345678"]
        assert crm.contacts.find_by_id_number("11010519491231002X")[0].name == "张伟"


def test_field_encryption_and_key_rotation_on_postgres(postgres_location: str) -> None:
    from conftest import psql_text

    key = guanxi.generate_field_key()
    with guanxi.Crm.open(postgres_location, user="admin", field_key=key) as crm:
        crm.customers.create("甲", contacts=[{"name": "张伟", "phones": ["138 1234 5678"], "id_number": "11010519491231002X"}])
        assert crm.contacts.find_by_phone("+8613812345678")[0].name == "张伟"
        new_key = guanxi.generate_field_key()
        assert proven(crm).access.rotate_field_key(new_key) == 1
    held = psql_text(postgres_location, "SELECT string_agg(doc, ' ') FROM guanxi.contacts")
    assert held.strip() and "13812345678" not in held and "11010519491231002X" not in held and "张伟" not in held
    with pytest.raises(guanxi.EncryptionError) as wrong:
        guanxi.Crm.open(postgres_location, user="admin", field_key=key)
    assert wrong.value.kind == "wrong_key"
    with guanxi.Crm.open(postgres_location, user="admin") as keyless, pytest.raises(guanxi.EncryptionError) as missing:
        keyless.contacts.find_by_phone("13812345678")
    assert missing.value.kind == "key_required"
    with guanxi.Crm.open(postgres_location, user="admin", field_key=new_key) as crm:
        assert crm.contacts.find_by_phone("13812345678")[0].phones == ["+8613812345678"]
        assert crm.contacts.find_by_id_number("11010519491231002X")[0].name == "张伟"


def test_duplicates_withhold_other_scopes_and_mask_values(db_path: Path) -> None:
    """Issue 15, items 1, 2 and 5, as an outside tester saw them from Python."""
    with guanxi.Crm.open(db_path, user="root") as crm:
        root = organise(crm)
        root.access.set_user("zhao", "赵", roles=["sales_rep"])
        wang, zhao, ma = crm.as_user("wang"), crm.as_user("zhao"), crm.as_user("ma")
        theirs = wang.customers.create("华为技术有限公司", contacts=[{"name": "张伟", "phone": "13812345678"}])
        found = zhao.duplicates.find("某某公司", contacts=[{"name": "王", "phone": "13812345678"}])
        assert len(found) == 1 and found[0]["id"] is None and found[0]["code"] == "" and found[0]["name"] == ""
        assert found[0]["reasons"][0]["field"] == "phone" and found[0]["reasons"][0]["value"] == ""
        assert found[0]["explanation"] == ["same phone as a customer outside your access scope"]
        text = str(found)
        assert "13812345678" not in text and theirs.code not in text and "华为" not in text
        # Marketing reads every customer with phones masked: so are the reasons.
        root.customers.create("另一家公司", contacts=[{"name": "王", "phone": "13812345678"}])
        reasons = str(ma.duplicates.of(theirs.id))
        assert "138****5678" in reasons and "13812345678" not in reasons and "+8613812345678" not in reasons

        # A refused export leaves an existing file as it was.
        target = db_path.parent / "export.csv"
        target.write_text("keep me")
        with pytest.raises(guanxi.ElevationRequiredError):
            crm.as_user("li").files.export_to_path(target)
        assert target.read_text() == "keep me"
        assert root.files.export_to_path(target) == 2
        assert "华为技术有限公司" in target.read_text(encoding="utf-8-sig")


def test_a_read_role_reads_on_every_path(db_path: Path) -> None:
    """Issue 15, item 4: customer read with scope all gave count() and get() but list() and
    export() failed with "read on custom_field"."""
    with guanxi.Crm.open(db_path, user="root") as crm:
        root = organise(crm)
        root.access.set_role("reader", "只读", grants=[("customer", ["read", "export"], "all")])
        root.access.set_user("kim", "金", roles=["reader"])
        root.customers.create("甲公司")
        kim = crm.as_user("kim")
        got = kim.customers.get(kim.customers.list_all()[0].id)
        assert kim.customers.count() == 1 and got.name == "甲公司"
        assert pa.table(kim.customers.list_all()).num_rows == 1
        assert pa.table(proven(kim).customers.export()).num_rows == 1


def test_a_rep_reads_the_ticket_they_open_and_explain_agrees(db_path: Path) -> None:
    """Issue 15, item 3: a sales rep could create a ticket but never read it, while explain
    said allowed."""
    with guanxi.Crm.open(db_path, user="root") as crm:
        root = organise(crm)
        wang = crm.as_user("wang")
        mine = wang.customers.create("王的客户")
        ticket = wang.service.tickets.create("发票开错了", kind="inquiry", priority="medium", customer_id=mine.id)
        assert [t.id for t in wang.service.tickets.list_all()] == [ticket.id] and wang.service.tickets.count() == 1
        assert wang.service.tickets.get(ticket.id).code == ticket.code
        assert wang.access.explain("read", "ticket", record_id=ticket.id)["allowed"] is True
        other = root.service.tickets.create("别人的工单", kind="fault", priority="high")
        with pytest.raises(guanxi.PermissionDeniedError):
            wang.service.tickets.get(other.id)
        assert wang.access.explain("read", "ticket", record_id=other.id)["allowed"] is False



def test_elevation_is_proven_by_password_totp_or_the_host(db_path: Path) -> None:
    """Issue 15, item 6: `elevated(until=9999-01-01)` used to be enough for anything."""
    import hashlib
    import hmac
    import struct
    import time
    import base64

    seen: list[tuple[str, str]] = []

    def idp(user: str, proof: str) -> bool:
        seen.append((user, proof))
        return proof == f"idp-ok:{user}"

    with guanxi.Crm.open(db_path, user="root", elevation_verifier=idp) as crm:
        root = organise(crm)
        forged = crm.as_user("root").elevated(dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc))
        with pytest.raises(guanxi.ElevationRequiredError):
            forged.access.set_user("mallory", "M", roles=["administrator"])
        with pytest.raises(guanxi.PermissionDeniedError) as refused:
            crm.as_user("root").access.elevate(password="wrong password")
        assert refused.value.action == "elevate"
        with pytest.raises(guanxi.ValidationError):
            crm.as_user("root").access.elevate()
        # The host's verifier.
        assert crm.as_user("root").access.elevate(host_proof="idp-ok:root").access.set_user("zhou", "周", roles=["sales_rep"]) is None
        assert seen == [("root", "idp-ok:root")]
        # A TOTP authenticator, enrolled by the user, verified with an RFC 6238 code computed here.
        wang = crm.as_user("wang")
        secret = wang.access.enroll_totp("wang")
        key = base64.b32decode(secret + "=" * (-len(secret) % 8))
        counter = struct.pack(">Q", int(time.time()) // 30)
        digest = hmac.new(key, counter, hashlib.sha1).digest()
        offset = digest[-1] & 0x0F
        code = str((struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000).zfill(6)
        assert wang.access.elevate(totp=code).user == "wang"
        assert wang.access.credentials("wang") == {"password": False, "totp": True}
        with pytest.raises(guanxi.PermissionDeniedError):
            wang.access.set_password("root", "hijacked password")
        # Every attempt is logged, no secret is.
        log = str(root.audit.entries())
        assert "elevate" in log and PASSWORD not in log and secret not in log
    # A host that re-verifies users itself may trust its own assertions.
    with guanxi.Crm.open(db_path, user="root", trust_asserted_elevation=True) as trusting:
        trusting.elevated(SOON).access.set_user("qian", "钱", roles=["sales_rep"])


def test_durability_is_a_choice_at_open(db_path: Path) -> None:
    with guanxi.Crm.open(db_path, user="admin", durability="normal") as crm:
        code = crm.customers.create("甲").code
    with guanxi.Crm.open(db_path, user="admin") as crm:
        assert crm.customers.get_by_code(code).name == "甲"
    with pytest.raises(guanxi.ValidationError) as bad:
        guanxi.Crm.open(db_path, user="admin", durability="fast")  # type: ignore[arg-type]
    assert [(e.field, e.allowed) for e in bad.value.errors] == [("durability", ["full", "normal"])]
