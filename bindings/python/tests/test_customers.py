"""Customer center from Python: pythonic objects, native types, typed exceptions."""

from __future__ import annotations

import datetime
import decimal
import threading
import uuid
from pathlib import Path

import pytest

import guanxi


def huawei(crm: guanxi.Crm) -> guanxi.Customer:
    return crm.customers.create(
        "  华为技术有限公司 ",
        industry="information_technology",
        size="large",
        source="展会",
        province="广东",
        city="深圳市",
        district="龙岗区",
        tags=["VIP", "行业-通信"],
        contacts=[{"name": "张伟", "phone": "+86 138-1234-5678", "email": "Zhang.Wei@Huawei.COM"}],
    )


def test_create_returns_normalized_customer_with_native_types(crm: guanxi.Crm) -> None:
    c = huawei(crm)
    assert c.name == "华为技术有限公司"
    assert c.code.startswith("C") and len(c.code) == 12
    assert isinstance(c.id, uuid.UUID) and c.id.version == 7
    assert isinstance(c.created_at, datetime.datetime) and c.created_at.utcoffset() == datetime.timedelta(0)
    assert c.province == "广东省" and c.city == "深圳市" and c.district == "龙岗区"
    assert c.status == guanxi.LifecycleStatus.POTENTIAL == "potential"
    assert c.kind == guanxi.CustomerKind.ENTERPRISE
    assert c.size == guanxi.SizeBand.LARGE
    assert c.owner == "alice" and c.created_by == "alice"
    assert c.tags == ["VIP", "行业-通信"]
    assert c.version == 1 and c.deleted_at is None
    [contact] = crm.contacts.list(c.id)
    assert contact.phones == ["+8613812345678"]
    assert contact.emails == ["zhang.wei@huawei.com"]
    assert contact.primary is True


def test_repr_and_equality(crm: guanxi.Crm) -> None:
    c = huawei(crm)
    assert repr(c) == f"Customer(code='{c.code}', name='华为技术有限公司', status='potential', version=1)"
    assert crm.customers.get(c.id) == c
    assert crm.customers.get(str(c.id)) == c
    assert crm.customers.get_by_code(c.code) == c
    assert crm.customers.get(c.id) != crm.customers.create("别的公司")
    assert repr(crm) == "Crm(user='alice', closed=False)"


def test_validation_error_lists_every_field(crm: guanxi.Crm) -> None:
    with pytest.raises(guanxi.ValidationError) as info:
        crm.customers.create("", province="火星", contacts=[{"name": "李娜", "phone": "12345", "email": "nope"}])
    err = info.value
    assert isinstance(err, guanxi.GuanxiError)
    assert err.field == "name" and err.reason == "is required"
    fields = sorted(e.field for e in err.errors)
    assert fields == ["contacts[0].emails[0]", "contacts[0].phones[0]", "name", "region.province"]
    codes = {e.field: e.code for e in err.errors}
    assert codes["contacts[0].phones[0]"] == "invalid_phone"
    assert crm.customers.count() == 0


def test_identifiers_are_checked_by_scheme_stored_and_replaced(crm: guanxi.Crm) -> None:
    with pytest.raises(guanxi.ValidationError) as info:
        crm.customers.create(
            "华为技术有限公司",
            identifiers=[
                {"scheme": "uscc", "value": "914403001922038217"},
                {"scheme": "driver", "value": "1"},
                {"scheme": "passport", "value": "E12345678"},
            ],
        )
    fields = sorted(e.field for e in info.value.errors)
    assert fields == ["identifiers[0]", "identifiers[1].scheme"]
    assert "cn_resident, uscc, passport, other" in str(info.value)
    assert crm.customers.count() == 0
    c = crm.customers.create(
        "华为技术有限公司",
        identifiers=[{"scheme": guanxi.IdScheme.PASSPORT, "value": "e 1234 5678"},
                     {"scheme": "uscc", "value": "9144 0300 1922 0382 16"}],
    )
    assert c.identifiers == [{"scheme": "uscc", "value": "914403001922038216"},
                             {"scheme": "passport", "value": "E12345678"}]
    assert c.identifiers[0]["scheme"] is guanxi.IdScheme.USCC
    # A renamed copy with the same code is a duplicate, found by the code alone.
    found = crm.duplicates.find("深圳某某通信", identifiers=[{"scheme": "other", "value": "914403001922038216"}])
    assert [m["id"] for m in found] == [c.id]
    c = crm.customers.update(c.id, c.version, identifiers=[{"scheme": "other", "value": "DUNS 123456789"}])
    assert c.identifiers == [{"scheme": "other", "value": "DUNS 123456789"}]
    assert crm.customers.update(c.id, c.version, identifiers=None).identifiers == []


def test_update_conflict_and_not_found(crm: guanxi.Crm) -> None:
    c = huawei(crm)
    updated = crm.customers.update(c.id, c.version, status="customer", address="坂田基地", custom={})
    assert updated.version == 2 and updated.status == guanxi.LifecycleStatus.CUSTOMER
    with pytest.raises(guanxi.ConflictError) as info:
        crm.customers.update(c.id, 1, name="过期的写入")
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert crm.customers.get(c.id).name == "华为技术有限公司"
    cleared = crm.customers.update(c.id, 2, address=None)
    assert cleared.address is None
    with pytest.raises(guanxi.NotFoundError):
        crm.customers.get(uuid.uuid4())
    with pytest.raises(guanxi.ValidationError) as bad:
        crm.customers.update(c.id, 3, colour="red")
    assert bad.value.field == "colour"


def test_soft_delete_and_restore(crm: guanxi.Crm) -> None:
    c = huawei(crm)
    deleted = crm.customers.delete(c.id, 1)
    assert deleted.deleted_at is not None
    with pytest.raises(guanxi.NotFoundError):
        crm.customers.get(c.id)
    assert crm.customers.count(deleted="only") == 1
    assert crm.customers.restore(c.id, 2).version == 3


def test_custom_fields_are_typed_and_floats_refused(crm: guanxi.Crm) -> None:
    crm.custom_fields.create("customer", "budget", "预算", "decimal")
    crm.custom_fields.create("customer", "since", "合作起始", "date")
    crm.custom_fields.create("customer", "products", "产品", "multi_select", allowed_values=["crm", "erp"])
    c = crm.customers.create(
        "甲",
        custom={"budget": decimal.Decimal("1200000.50"), "since": datetime.date(2020, 1, 2), "products": ["crm"]},
    )
    assert c.custom == {"budget": decimal.Decimal("1200000.5"), "since": datetime.date(2020, 1, 2), "products": ["crm"]}
    with pytest.raises(guanxi.ValidationError) as info:
        crm.customers.create("乙", custom={"budget": 1.5})
    assert info.value.field == "custom.budget"
    with pytest.raises(guanxi.ValidationError) as info:
        crm.customers.create("丙", custom={"products": ["sap"]})
    assert info.value.errors[0].code == "not_allowed"
    assert crm.customers.count(custom={"products": "crm"}) == 1


def test_filters_tags_contacts_interactions_timeline(crm: guanxi.Crm) -> None:
    c = huawei(crm)
    crm.customers.create("腾讯", province="广东", status="customer")
    crm.customers.create("海尔", province="山东", tags=["VIP"])
    assert crm.customers.count(province="广东") == 2
    assert crm.customers.count(tag="VIP", province="广东") == 1
    assert crm.customers.count(status=guanxi.LifecycleStatus.CUSTOMER) == 1
    crm.tags.add(c.id, "重点")
    assert "重点" in crm.customers.get(c.id).tags
    crm.tags.remove(c.id, "重点")
    assert [t.name for t in crm.tags.list()] == ["VIP", "行业-通信", "重点"]
    second = crm.contacts.create(c.id, "李娜", phones=["139 0000 1111"], primary=True)
    assert [p.name for p in crm.contacts.list(c.id)] == ["李娜", "张伟"] and second.primary
    i = crm.interactions.create(c.id, "visit", "现场演示，客户关注价格", next_contact_on=datetime.date(2030, 1, 1))
    assert i.content == "现场演示，客户关注价格" and i.author == "alice"
    assert crm.interactions.list(c.id) == [i]
    kinds = [e["type"] for e in crm.customers.timeline(c.id)]
    assert kinds.count("interaction") == 1 and kinds[0] == "change"


def test_change_log_and_acting_user(crm: guanxi.Crm) -> None:
    c = huawei(crm)
    bob = crm.as_user("bob")
    bob.customers.update(c.id, 1, status="customer")
    entries = crm.audit.entries(entity_id=str(c.id))
    assert [(e.user, e.action) for e in entries] == [("alice", "create"), ("bob", "update")]
    assert entries[1].changes == [("status", '"potential"', '"customer"')]
    assert [e.user for e in crm.audit.entries(user="bob")] == ["bob"]


def test_events_reach_python_callbacks_after_commit(crm: guanxi.Crm) -> None:
    seen: list[dict[str, object]] = []
    sub = crm.subscribe(seen.append)
    c = huawei(crm)
    assert [e["type"] for e in seen] == ["customer_created", "tag_added", "tag_added", "contact_added"]
    assert seen[0]["customer_id"] == c.id and seen[0]["user"] == "alice"
    assert crm.unsubscribe(sub)
    crm.customers.create("后来者")
    assert len(seen) == 4


def test_context_manager_closes_and_file_persists(db_path: Path) -> None:
    with guanxi.Crm.open(db_path, user="alice") as crm:
        code = huawei(crm).code
    assert crm.closed
    with pytest.raises(guanxi.GuanxiError, match="closed"):
        crm.customers.count()
    with guanxi.Crm.open(str(db_path), user="bob") as again:
        assert again.customers.get_by_code(code).name == "华为技术有限公司"


def test_many_threads_share_a_handle(crm: guanxi.Crm) -> None:
    # Storage work runs without the GIL; threads interleave safely.
    def work(n: int) -> None:
        for i in range(20):
            crm.customers.create(f"客户{n}-{i}", tags=["并发"])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    table = crm.customers.list_all(tag="并发")
    assert len(table) == 80 and len({c.code for c in table.to_list()}) == 80


def test_create_many_is_all_or_nothing(crm: guanxi.Crm) -> None:
    rows = [{"name": f"批量{i}", "tags": ["批量"]} for i in range(5)]
    rows[3]["contacts"] = [{"name": "错", "phone": "999"}]
    with pytest.raises(guanxi.ValidationError) as info:
        crm.customers.create_many(rows)
    assert info.value.field == "customers[3].contacts[0].phones[0]"
    assert crm.customers.count() == 0
    del rows[3]["contacts"]
    assert len(crm.customers.create_many(rows)) == 5


def test_contact_lifecycle_and_field_definitions(crm: guanxi.Crm) -> None:
    c = huawei(crm)
    zhang = crm.contacts.list(c.id)[0]
    li = crm.contacts.create(c.id, "李娜", phones=["139 0000 1111"], role="evaluator")
    updated = crm.contacts.update(li.id, li.version, title="采购经理", do_not_contact=True, role=None)
    assert (updated.title, updated.do_not_contact, updated.role, updated.version) == ("采购经理", True, None, 2)
    with pytest.raises(guanxi.ConflictError):
        crm.contacts.update(li.id, li.version, title="过期")
    with pytest.raises(guanxi.ValidationError) as info:
        crm.contacts.update(li.id, 2, phones=["110"])
    assert info.value.field == "phones[0]"
    assert crm.contacts.set_primary(li.id).primary
    assert [p.name for p in crm.contacts.list(c.id) if p.primary] == ["李娜"]
    crm.contacts.delete(li.id, crm.contacts.list(c.id)[0].version)
    assert [(p.name, p.primary) for p in crm.contacts.list(c.id)] == [(zhang.name, True)]
    crm.custom_fields.create("contact", "wechat", "微信", "text")
    assert [(f.entity, f.key) for f in crm.custom_fields.list("contact")] == [("contact", "wechat")]
    assert crm.custom_fields.list() == []


def test_out_of_range_numbers_and_odd_decimals_are_typed_errors(crm: guanxi.Crm) -> None:
    """Issue 15, item 11: OverflowError and "unsupported value type Decimal" used to escape."""
    import decimal

    c = crm.customers.create("甲公司")
    for bad in (-1, 2**64, 2**200, True, "1"):
        with pytest.raises(guanxi.ValidationError) as err:
            crm.customers.update(c.id, bad, name="乙公司")  # type: ignore[arg-type]
        assert err.value.field == "version"
    with pytest.raises(guanxi.ValidationError) as err:
        crm.audit.entries(limit=-5)
    assert err.value.field == "limit"
    crm.custom_fields.create("customer", "budget", "预算", "decimal")
    for bad in (decimal.Decimal("NaN"), decimal.Decimal("Infinity"), decimal.Decimal("1e30"), decimal.Decimal("-Infinity")):
        with pytest.raises(guanxi.ValidationError) as err:
            crm.customers.update(c.id, 1, custom={"budget": bad})
        assert err.value.field == "custom.budget", bad
    assert crm.customers.get(c.id).version == 1
