"""Every namespace of the API, used the way the README shows it.

CI runs this file twice: under pytest (it must work) and under ``mypy --strict`` (it must
type-check, and every ``# type: ignore[...]`` below must still be needed: a misspelt keyword or
a value outside a vocabulary is a type error, so losing that check fails CI as an unused ignore).
"""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pytest

import guanxi
import guanxi.fields
from guanxi import (
    Crm,
    Customer,
    FieldError,
    IdScheme,
    Identifier,
    LifecycleStatus,
    Milestone,
    Priority,
    ProductLine,
    SizeBand,
    Table,
    TicketKind,
    ValidationError,
)
from guanxi.fields import NewCustomer

T0 = dt.datetime(2024, 5, 6, 9, 0, tzinfo=dt.timezone.utc)
PASSWORD = "correct horse battery staple"


def first_customer(crm: Crm) -> Customer:
    """The oldest customer: `with` is typed so that a return inside it type-checks."""
    with crm.as_user(crm.user) as same:
        return same.customers.list(limit=1)[0]


def test_every_namespace_from_one_handle(tmp_path: Path) -> None:
    with Crm.open(tmp_path / "tour.db", user="alice") as crm:
        # customers, tags, contacts, interactions, custom fields
        crm.custom_fields.create("customer", "budget", "预算", "decimal")
        assert [f.key for f in crm.custom_fields.list("customer")] == ["budget"]
        crm.tags.create("VIP", group="价值")
        hw = crm.customers.create(
            "华为技术有限公司",
            province="广东",
            size=SizeBand.LARGE,
            status=LifecycleStatus.CUSTOMER,
            tags=["VIP"],
            custom={"budget": decimal.Decimal("1200.50")},
            identifiers=[{"scheme": IdScheme.USCC, "value": "914403001922038216"}],
            contacts=[{"name": "张伟", "phone": "138-1234-5678"}],
        )
        code: list[Identifier] = hw.identifiers
        assert code[0]["scheme"] == IdScheme.USCC
        assert hw.status == "customer" and hw.size == SizeBand.LARGE
        rows: list[NewCustomer] = [{"name": "甲公司", "industry": "制造业"}, {"name": "乙公司"}]
        made = crm.customers.create_many(rows)
        assert first_customer(crm).id == hw.id
        hw = crm.customers.update(hw.id, hw.version, city="深圳", level="a")
        assert crm.customers.get_by_code(hw.code).city == "深圳"
        assert crm.customers.get(hw.id).province == "广东省"
        assert crm.tags.add(made[0].id, "VIP").tags == ["VIP"]
        assert crm.tags.remove(made[0].id, "VIP").tags == []
        assert [t.name for t in crm.tags.list()] == ["VIP"]
        zhang = crm.contacts.list(hw.id)[0]
        li = crm.contacts.create(hw.id, "李娜", title="采购经理", emails=["li@example.com"], role="evaluator")
        li = crm.contacts.update(li.id, li.version, title=None)
        assert crm.contacts.set_primary(li.id).primary
        assert crm.contacts.get(zhang.id).primary is False
        assert [c.name for c in crm.contacts.find_by_phone("13812345678")] == ["张伟"]
        assert crm.contacts.find_by_id_number("11010519491231002X") == []
        crm.contacts.delete(zhang.id, crm.contacts.get(zhang.id).version)
        crm.interactions.create(hw.id, "visit", "拜访", at=T0, next_contact_on=dt.date(2024, 5, 20))
        assert [i.kind for i in crm.interactions.list(hw.id)] == ["visit"]
        assert {e["type"] for e in crm.customers.timeline(hw.id)} == {"change", "interaction"}

        # one table type: paged, sliceable, iterable
        page: Table[Customer] = crm.customers.list(limit=2)
        assert len(page) == 2 and page.next is not None
        rest = crm.customers.list(after=page.next, limit=2)
        assert [c.name for c in rest] == ["乙公司"] and rest.next is None
        assert [c.name for c in page[0:1]] == ["华为技术有限公司"]
        assert len(crm.customers.list_all(tag="VIP")) == 1
        assert crm.customers.count(province="广东") == 1
        assert crm.customers.count(deleted="include") == 3

        # duplicates and files
        checked = crm.customers.create_checked("华为技术", on_duplicate="warn", province="广东")
        assert checked["created"] is True and checked["duplicates"]
        assert crm.duplicates.of(hw.id)
        assert crm.duplicates.find("华为技术有限公司")
        crm.duplicates.mark_not_duplicate(hw.id, checked["customer"].id)
        assert crm.duplicates.not_duplicates() == [tuple(sorted((hw.id, checked["customer"].id)))]
        assert crm.duplicates.set_rules(crm.duplicates.rules()) == crm.duplicates.rules()
        surname = guanxi.MatchRule("surname", "jaro_winkler", min=0.85)
        assert guanxi.MatchRules([surname], blocking=[guanxi.BlockingKey("exact", "surname")]).rules == [surname]
        assert crm.duplicates.link({"province": "广东"}, {"tag": "VIP"}).stats["profiles"] >= 1
        assert crm.duplicates.scan(province="广东").stats["excluded_pairs"] == 1
        plan = crm.duplicates.plan_merge(made[0].id, [made[1].id])
        assert plan["survivor"].id == made[0].id
        assert crm.duplicates.merged_into(made[1].id) is None
        template = guanxi.Files.import_template("csv")
        report = crm.files.import_customers(template)
        assert report.committed and report.rows == 1
        assert crm.files.export_to_path(tmp_path / "out.csv", province="广东") == 3
        assert crm.files.backup(tmp_path / "copy.db").intact

        # sales
        deal = crm.sales.opportunities.create(
            "ERP 升级",
            customer_id=hw.id,
            expected_close=dt.date(2024, 6, 30),
            lines=[ProductLine("ERP", 1, decimal.Decimal("300000"))],
            milestones=[Milestone("POC", due_on=dt.date(2024, 6, 1))],
            opened_at=T0,
        )
        deal = crm.sales.opportunities.move_to(deal.id, deal.version, "intent", at=T0)
        deal = crm.sales.opportunities.update(deal.id, deal.version, lines=[ProductLine("ERP", 2, 160000)])
        assert crm.sales.opportunities.get_by_code(deal.code).amount == decimal.Decimal("320000")
        assert [h.to_stage for h in crm.sales.opportunities.history(deal.id)][-1] == "intent"
        assert crm.sales.opportunities.count(open=True) == 1
        assert len(crm.sales.opportunities.list(limit=10)) == 1
        assert crm.sales.opportunities.list_all(customer_id=hw.id)[0].id == deal.id
        assert crm.sales.pipeline().key == "standard"
        crm.sales.set_lead_rules(crm.sales.lead_rules())
        lead = crm.sales.leads.create("王芳", company="某某科技", phone="13900001111", industry="information_technology")
        assert crm.sales.leads.get(lead.id).name == "王芳"
        assert crm.sales.leads.count(open=True) == 1
        assert len(crm.sales.leads.list(status="new")) + len(crm.sales.leads.list_all(status="assigned")) == 1
        converted = crm.sales.leads.convert(lead.id, opportunity={"name": "首单", "amount": 5000})
        assert converted.opportunity_id is not None
        task = crm.sales.tasks.create("回访", T0 + dt.timedelta(days=1), opportunity_id=deal.id)
        crm.sales.tasks.complete(task.id, task.version)
        assert crm.sales.tasks.list_all(open=False)[0].id == task.id
        assert crm.sales.report(start=T0 - dt.timedelta(days=1)).pipeline == "standard"
        assert crm.sales.agenda(at=T0).overdue == []
        lost: list[guanxi.fields.PastMove] = [{"stage": "intent", "at": T0}, {"stage": "lost", "at": T0, "lost_reason": "价格偏高"}]
        batch = crm.sales.opportunities.create_many([{"name": "旧单", "amount": 800, "opened_at": T0, "moves": lost}])
        assert batch[0].stage == "lost" and len(crm.sales.opportunities.history(batch[0].id)) == 3

        # service and the knowledge base
        crm.service.set_settings(crm.service.settings())
        ticket = crm.service.tickets.create("无法登录", kind=TicketKind.FAULT, priority=Priority.HIGH, customer_id=hw.id)
        ticket = crm.service.tickets.reply(ticket.id, ticket.version, "请重置密码")
        ticket = crm.service.tickets.assign(ticket.id, ticket.version, agent="alice")
        ticket = crm.service.tickets.move_to(ticket.id, ticket.version, "in_progress")
        ticket = crm.service.tickets.set_priority(ticket.id, ticket.version, "urgent")
        ticket = crm.service.tickets.move_to(ticket.id, ticket.version, "resolved", resolution="已重置")
        ticket = crm.service.tickets.rate(ticket.id, ticket.version, 5)
        assert crm.service.tickets.get_by_code(ticket.code).satisfaction == 5
        assert [e.type for e in crm.service.tickets.entries(ticket.id)][0] == "created"
        assert crm.service.tickets.count(status="resolved") == 1
        assert len(crm.service.tickets.list(limit=5)) == len(crm.service.tickets.list_all(kind="fault")) == 1
        assert len(crm.service.tickets.sla(ticket.id)) == 1
        assert len(crm.service.sla_overview(priority="urgent")) == 1
        assert crm.service.report(period="week").tickets == 1
        article = crm.kb.create("如何重置密码", "在登录页点击忘记密码。", tags=["登录"])
        article = crm.kb.update(article.id, article.version, "如何重置密码", "在登录页点击“忘记密码”。")
        assert crm.kb.get(article.id).version == 2
        assert crm.kb.search("重置密码")[0].article.id == article.id
        assert isinstance(crm.kb.suggest(ticket.id), list)
        raised = crm.service.tickets.create_many([{"subject": "发票抬头", "kind": "inquiry", "priority": "low", "channel": "email"}])
        assert raised[0].channel == "email"

        # access and audit
        crm.access.set_password("alice", PASSWORD)
        assert crm.access.credentials("alice") == {"password": True, "totp": False}
        admin = crm.access.elevate(password=PASSWORD)
        admin.access.set_department("sales", "销售部")
        admin.access.set_user("alice", "Alice", department="sales", roles=["administrator"])
        admin.access.set_role("auditor", "审计", grants=[("customer", ["read"], "all")])
        admin.access.remove_role("auditor")
        assert list(admin.access.model()["users"]) == ["alice"]
        assert admin.access.explain("read", "customer", record_id=hw.id)["allowed"] is True
        assert crm.audit.verify().intact
        assert crm.audit.entries(customer_id=hw.id, limit=1)[0].action == "create"


def test_bad_calls_are_type_errors_and_validation_errors() -> None:
    crm = Crm.in_memory(user="alice")
    with pytest.raises(ValidationError) as misspelt:
        crm.customers.create("甲", provnce="广东")  # type: ignore[call-arg]
    assert misspelt.value.field == "provnce" and "province" in misspelt.value.errors[0].allowed
    with pytest.raises(ValidationError) as bad:
        crm.customers.create("乙", size="huge", industry="farming", status="gone")  # type: ignore[arg-type]
    errors: list[FieldError] = bad.value.errors
    assert sorted(e.field for e in errors) == ["industry", "size", "status"]
    assert next(e for e in errors if e.field == "size").allowed == ["small", "medium", "large"]
    with pytest.raises(ValidationError) as rows:
        crm.customers.create_many([{"name": "丙"}, {"name": "丁", "industry": "farming"}])  # type: ignore[typeddict-item]
    assert rows.value.field == "customers[1].industry"
    # The binding's errors and the core's come together: a bad size no longer hides the rest.
    with pytest.raises(ValidationError) as both:
        crm.customers.create("", size="huge", contacts=[{"name": "李娜", "phone": "12345"}])  # type: ignore[arg-type]
    assert sorted(e.field for e in both.value.errors) == ["contacts[0].phones[0]", "name", "size"]
    with pytest.raises(ValidationError) as many:
        crm.customers.create_many([{"name": "戊", "contacts": [{"name": "张", "phone": "1"}]}, {"name": "己", "size": "huge"}])  # type: ignore[typeddict-item]
    assert sorted(e.field for e in many.value.errors) == ["customers[0].contacts[0].phones[0]", "customers[1].size"]
    assert crm.customers.count() == 0
    crm.customers.check("庚", province="广东")
    with pytest.raises(ValidationError) as checked:
        crm.customers.check("", province="火星")
    assert sorted(e.field for e in checked.value.errors) == ["name", "region.province"]
    assert crm.customers.count() == 0
    with pytest.raises(ValidationError) as ticket:
        crm.service.tickets.create("?", kind="question", priority="asap", channel="fax")  # type: ignore[arg-type]
    assert sorted(e.field for e in ticket.value.errors) == ["channel", "kind", "priority"]
    with pytest.raises(ValidationError) as deal:
        crm.sales.opportunities.create("?", amount=1.5, amont=2)  # type: ignore[arg-type, call-arg]
    assert sorted(e.field for e in deal.value.errors) == ["amont", "amount"]
    with pytest.raises(ValidationError) as filters:
        crm.service.tickets.count(status="done", priority="asap")  # type: ignore[arg-type]
    assert sorted(e.field for e in filters.value.errors) == ["priority", "status"]
    with pytest.raises(ValidationError) as paging:
        crm.customers.list(after="not a cursor", limit=0)
    assert sorted(e.field for e in paging.value.errors) == ["after", "limit"]
    with pytest.raises(ValidationError) as mapping:
        crm.files.import_customers(b"x", columns={"公司": "nmae"}, mode="all")  # type: ignore[arg-type]
    assert sorted(e.field for e in mapping.value.errors) == ["columns.公司", "mode"]
    assert "name" in mapping.value.errors[0].allowed
    with pytest.raises(TypeError, match="name"):
        crm.customers.create(42)  # type: ignore[arg-type]


def test_the_enums_are_the_native_vocabularies() -> None:
    """`guanxi.fields` is written by hand; this keeps it equal to the core's vocabularies."""
    native = guanxi.vocabularies()
    assert set(native) <= set(dir(guanxi.fields))
    for name, values in native.items():
        declared = getattr(guanxi.fields, name)
        assert [m.value for m in declared] == values, name
        assert getattr(guanxi, name) is declared
