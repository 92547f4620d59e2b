"""Sales from Python: pipelines, opportunities with stage history, leads, tasks, and the sales
report whose breakdowns are Arrow tables (pandas / polars)."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

import guanxi
from guanxi import Milestone, Pipeline, ProductLine, Stage

REPO = Path(__file__).resolve().parents[3]

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)


def day(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def test_pipelines_are_typed_both_ways(crm: guanxi.Crm) -> None:
    standard = crm.sales.pipeline()
    assert [s.key for s in standard.stages] == ["lead", "intent", "proposal", "negotiation", "won", "lost"]
    assert standard.stages[0].probability == Decimal(10) and standard.stages[1].exit_requirements == {"amount"}
    assert "价格偏高" in standard.lost_reasons
    renewal = Pipeline(
        "renewal",
        "续约",
        [s for s in standard.stages if s.key != "proposal"] + [Stage("paused", "暂停", "open", Decimal("5"), rotting_days=60)],
        lost_reasons=["预算取消"],
    )
    assert crm.sales.set_pipeline(renewal) == renewal == crm.sales.pipeline("renewal")
    with pytest.raises(guanxi.ValidationError) as bad:
        crm.sales.set_pipeline(Pipeline("x", "坏", [Stage("a", "甲", "open", Decimal(150))]))
    assert bad.value.field.startswith("stages[0].probability")
    with pytest.raises(guanxi.ValidationError):
        crm.sales.pipeline("nope")


def test_opportunity_moves_keep_an_append_only_history(crm: guanxi.Crm) -> None:
    customer = crm.customers.create("星河科技")
    lines = [ProductLine("GTX Pro", 3, Decimal("4999.99"), Decimal("10")), ProductLine("服务包", 1, "2000")]
    assert lines[0].total == Decimal("14989.97")
    o = crm.sales.opportunities.create(
        "ERP 升级",
        customer_id=customer.id,
        lines=lines,
        milestones=[Milestone("报价", dt.date(2024, 2, 1))],
        opened_at=day(0),
    )
    assert o.code.startswith("O") and o.stage == "lead" and o.probability == Decimal(10)
    assert o.amount == Decimal("16989.97") and o.currency == "CNY" and o.is_open
    o = crm.sales.opportunities.move_to(o.id, o.version, "intent", at=day(3))
    o = crm.sales.opportunities.move_to(o.id, o.version, "proposal", at=day(10))
    # Leaving 方案 needs an expected close date: refused, nothing changes.
    with pytest.raises(guanxi.ValidationError) as refused:
        crm.sales.opportunities.move_to(o.id, o.version, "negotiation")
    assert refused.value.field == "expected_close"
    assert crm.sales.opportunities.get(o.id) == o
    # A stage that does not exist: the error lists the ones that do.
    with pytest.raises(guanxi.ValidationError) as unknown:
        crm.sales.opportunities.move_to(o.id, o.version, "signed")
    stage = unknown.value.errors[0]
    assert (stage.field, stage.code) == ("stage", "not_allowed")
    assert stage.allowed == ["lead", "intent", "proposal", "negotiation", "won", "lost"]
    assert "(lead, intent, proposal, negotiation, won, lost)" in stage.reason
    o = crm.sales.opportunities.update(o.id, o.version, expected_close=dt.date(2024, 3, 31), probability=Decimal(65))
    assert o.probability_source == "manual"
    o = crm.sales.opportunities.move_to(o.id, o.version, "lost", lost_reason="价格偏高", at=day(20))
    assert not o.is_open and o.lost_reason == "价格偏高" and o.probability == 0
    with pytest.raises(guanxi.InvalidStateError):
        crm.sales.opportunities.move_to(o.id, o.version, "intent")
    history = crm.sales.opportunities.history(o.id)
    assert [(h.from_stage, h.to_stage) for h in history] == [
        (None, "lead"),
        ("lead", "intent"),
        ("intent", "proposal"),
        ("proposal", "lost"),
    ]
    assert history[2].from_entered_at == day(3) and history[3].lost_reason == "价格偏高"
    assert crm.sales.opportunities.get_by_code(o.code).id == o.id
    with pytest.raises(guanxi.ConflictError):
        crm.sales.opportunities.update(o.id, 1, name="旧版本")


def test_money_is_never_a_float(crm: guanxi.Crm) -> None:
    with pytest.raises(guanxi.ValidationError) as err:
        crm.sales.opportunities.create("浮点", amount=12.5)
    assert err.value.field == "amount"
    with pytest.raises(guanxi.ValidationError):
        crm.sales.opportunities.create("坏币种", amount=Decimal(1), currency="yuan")
    with pytest.raises(guanxi.ValidationError):
        crm.sales.opportunities.create("未知字段", colour="red")
    assert crm.sales.opportunities.count() == 0


def _deals(crm: guanxi.Crm, n: int) -> None:
    """`n` deals opened over 60 days, a third won, a third lost, the rest open."""
    for i in range(n):
        o = crm.sales.opportunities.create(
            f"商机{i}",
            amount=Decimal(1000 + 37 * i) / 100,
            expected_close=dt.date(2024, 3 + i % 3, 15),
            owner=["alice", "bob"][i % 2],
            opened_at=day(i % 60),
        )
        o = crm.sales.opportunities.move_to(o.id, o.version, "intent", at=day(i % 60 + 2))
        if i % 3 == 0:
            o = crm.sales.opportunities.move_to(o.id, o.version, "won", at=day(i % 60 + 2 + i % 7))
        elif i % 3 == 1:
            o = crm.sales.opportunities.move_to(o.id, o.version, "lost", lost_reason="选择竞品", at=day(i % 60 + 5))


def test_report_tables_match_a_pure_python_calculation(crm: guanxi.Crm) -> None:
    _deals(crm, 90)
    report = crm.sales.report(start=day(0), end=day(200))
    # The forecast counts open deals expected to close in the range: all 30 expect May 15.
    assert crm.sales.report(start=day(0), end=day(120)).open_count == 0
    deals = crm.sales.opportunities.list_all()
    won = [o for o in deals if o.won_at is not None]
    lost = [o for o in deals if o.lost_at is not None]
    assert report.won.count == len(won) == 30 and report.lost.count == len(lost) == 30
    assert report.win_rate == Decimal(len(won)) / Decimal(len(won) + len(lost))
    assert report.won.amount == sum((o.amount for o in won), Decimal(0))
    assert report.open_count == 30 and report.open_amount == sum((o.amount for o in deals if o.is_open), Decimal(0))
    assert report.weighted_pipeline == sum((o.amount * o.probability / 100 for o in deals if o.is_open), Decimal(0))

    funnel = report.funnel.to_pandas().set_index("stage")
    assert list(funnel.index) == ["lead", "intent", "proposal", "negotiation", "won", "lost"]
    assert funnel.loc["lead", "reached"] == 90 and funnel.loc["intent", "reached"] == 90
    assert funnel.loc["won", "count"] == 30 and funnel.loc["intent", "lost_here"] == 30
    assert pa.table(report.loss_reasons).to_pylist() == [{"stage": "intent", "reason": "选择竞品", "count": 30}]
    by_owner = {r["owner"]: r["amount"] for r in pa.table(report.won_by_owner).to_pylist()}
    expected: Counter[str] = Counter()
    for o in won:
        expected[o.owner or ""] += o.amount  # type: ignore[assignment]
    assert by_owner == dict(expected)
    forecast = report.forecast.to_polars()
    assert forecast["count"].sum() == 30
    assert pa.table(report.forecast).schema.field("amount").type == pa.decimal128(38, 10)
    cycle = sorted(((o.won_at - o.opened_at).days for o in won))  # type: ignore[operator]
    assert report.won.median_days == (Decimal(cycle[14]) + Decimal(cycle[15])) / 2


def test_opportunity_table_is_typed(crm: guanxi.Crm) -> None:
    _deals(crm, 12)
    table = pa.table(crm.sales.opportunities.list_all(owner="alice"))
    assert table.num_rows == 6
    assert table.schema.field("amount").type == pa.decimal128(38, 10)
    assert table.schema.field("expected_close").type == pa.date32()
    assert table.schema.field("won_at").type == pa.timestamp("us", tz="UTC")
    assert sorted(table.column("code").to_pylist()) == sorted(o.code for o in crm.sales.opportunities.list_all(owner="alice"))
    assert crm.sales.opportunities.count(open=True) == 4


def test_several_currencies_need_a_choice(crm: guanxi.Crm) -> None:
    crm.sales.opportunities.create("人民币", amount=Decimal(100))
    crm.sales.opportunities.create("美元", amount=Decimal(100), currency="USD")
    with pytest.raises(guanxi.ValidationError) as err:
        crm.sales.report()
    assert err.value.field == "currency"
    assert crm.sales.report(currency="USD").open_amount == Decimal(100)


def test_leads_are_graded_assigned_and_converted(crm: guanxi.Crm) -> None:
    rules = crm.sales.lead_rules()
    assert rules["grading"][0] == {"grade": "a", "when": {"source_in": ["行业峰会"]}}
    rules["assignment"] = [{"by_province": {"广东省": "carol"}}, {"round_robin": ["alice", "bob"]}]
    assert crm.sales.set_lead_rules(rules) == rules
    with pytest.raises(guanxi.ValidationError):
        crm.sales.set_lead_rules({"grading": [{"grade": "z"}]})
    summit = crm.sales.leads.create("王磊", company="星河科技", source="行业峰会", phone="138 0013 8000", province="广东")
    assert (summit.grade, summit.owner, summit.status, summit.phone) == ("a", "carol", "assigned", "+8613800138000")
    owners = [crm.sales.leads.create(f"线索{i}", budget_confirmed=True, need_confirmed=True).owner for i in range(4)]
    assert owners == ["alice", "bob", "alice", "bob"]
    assert {lead.grade for lead in crm.sales.leads.list_all(owner="alice")} == {"b"}
    conv = crm.sales.leads.convert(summit.id, opportunity={"name": "扩容", "amount": Decimal("50000")})
    assert not conv.linked_existing and conv.opportunity_id is not None
    assert crm.sales.opportunities.get(conv.opportunity_id).customer_id == conv.customer_id
    assert crm.sales.leads.get(summit.id).status == "converted"
    # A second lead with the same phone links the customer the first one became.
    again = crm.sales.leads.create("王磊", phone="13800138000")
    linked = crm.sales.leads.convert(again.id)
    assert linked.linked_existing and linked.customer_id == conv.customer_id and "same phone" in (linked.matched_by or "")
    with pytest.raises(guanxi.InvalidStateError):
        crm.sales.leads.convert(again.id)


def test_tasks_and_agenda(crm: guanxi.Crm) -> None:
    o = crm.sales.opportunities.create("跟进", amount=Decimal(10), cadence_days=3)
    now = dt.datetime.now(UTC)
    late = crm.sales.tasks.create("发报价单", now - dt.timedelta(hours=30), opportunity_id=o.id)
    crm.sales.tasks.create("回访", now + dt.timedelta(days=30))
    agenda = crm.sales.agenda(at=now + dt.timedelta(days=4))
    assert [i.task.title for i in agenda.overdue if i.task] == ["发报价单"]
    assert any(i.kind == "follow_up" and i.code == o.code for i in agenda.overdue)
    done = crm.sales.tasks.complete(late.id, late.version)
    assert done.done_at is not None
    assert [t.title for t in crm.sales.tasks.list_all(open=True)] == ["回访"]
    assert crm.sales.tasks.get(late.id).version == done.version
    assert crm.sales.tasks.count() == 2 and crm.sales.tasks.count(open=False) == 1
    first = crm.sales.tasks.list(limit=1)
    assert [t.title for t in first] == ["发报价单"] and first.next is not None
    rest = crm.sales.tasks.list(after=first.next, limit=1)
    assert [t.title for t in rest] == ["回访"] and rest.next is None
    assert crm.sales.agenda("bob", at=now).overdue == []


def test_sales_survive_reopening_a_file(db_path: Path) -> None:
    with guanxi.Crm.open(db_path, user="alice") as crm:
        _deals(crm, 9)
        before = crm.sales.report()
    with guanxi.Crm.open(db_path, user="alice") as crm:
        after = crm.sales.report()
        assert (after.won.count, after.win_rate, after.weighted_pipeline) == (
            before.won.count,
            before.win_rate,
            before.weighted_pipeline,
        )
        assert pa.table(after.funnel).equals(pa.table(before.funnel))


def test_create_many_loads_the_real_deals_with_their_history_in_one_call(crm: guanxi.Crm) -> None:
    # The CRM Sales data set (tests/data): open, won and lost deals with their dates, in one call
    # and one transaction — it took a create and up to two moves a deal before.
    crm.sales.set_pipeline(
        Pipeline(
            "crm_sales",
            "CRM Sales Opportunities",
            [
                Stage("Prospecting", "Prospecting", "open", Decimal(10)),
                Stage("Engaging", "Engaging", "open", Decimal(50)),
                Stage("Won", "Won", "won", Decimal(100)),
                Stage("Lost", "Lost", "lost", Decimal(0)),
            ],
            lost_reasons=["未记录"],
        )
    )
    with open(REPO / "tests" / "data" / "crm_sales_pipeline.csv", encoding="utf-8") as f:
        deals = list(csv.DictReader(f))[:2000]

    def when(d: str) -> dt.datetime:
        return dt.datetime.fromisoformat(d).replace(tzinfo=UTC)

    def row(d: dict[str, str]) -> guanxi.fields.NewOpportunity:
        moves: list[guanxi.fields.PastMove] = []
        if d["engage_date"]:
            moves.append({"stage": "Engaging", "at": when(d["engage_date"])})
        if d["deal_stage"] in ("Won", "Lost"):
            moves.append({"stage": d["deal_stage"], "at": when(d["close_date"]), "lost_reason": "未记录"})
        amount = Decimal(d["close_value"]) if d["deal_stage"] == "Won" else Decimal(0)
        opened = when(d["engage_date"]) if d["engage_date"] else None
        return {"name": d["opportunity_id"], "pipeline": "crm_sales", "currency": "USD", "amount": amount,
                "owner": d["sales_agent"].replace(" ", "_"), "opened_at": opened, "moves": moves}

    made = crm.sales.opportunities.create_many([row(d) for d in deals])
    assert [o.name for o in made] == [d["opportunity_id"] for d in deals]
    assert len({o.code for o in made}) == len(made)  # one code each, from one reserved block
    assert Counter(o.stage for o in made) == Counter(d["deal_stage"] for d in deals)
    won = [d for d in deals if d["deal_stage"] == "Won"]
    assert sum((o.amount for o in made if o.stage == "Won"), Decimal(0)) == sum(Decimal(d["close_value"]) for d in won)
    assert {o.won_at for o in made if o.stage == "Won"} == {when(d["close_date"]) for d in won}
    closed = next(o for o, d in zip(made, deals) if d["deal_stage"] == "Lost" and d["engage_date"])
    assert [h.to_stage for h in crm.sales.opportunities.history(closed.id)] == ["Prospecting", "Engaging", "Lost"]
    report = crm.sales.report("crm_sales", currency="USD")
    closed_count = sum(1 for d in deals if d["deal_stage"] in ("Won", "Lost"))
    assert report.win_rate is not None and abs(report.win_rate - Decimal(len(won)) / closed_count) < Decimal("0.0001")


def test_create_many_opportunities_is_all_or_nothing_and_names_each_row(crm: guanxi.Crm) -> None:
    c = crm.customers.create("甲公司")
    rows: list[guanxi.fields.NewOpportunity] = [
        {"name": "ERP", "customer_id": c.id, "amount": Decimal("80000")},
        {"name": "CRM", "currency": "dollars", "amount": 12.5},  # a float is never money
        {"name": " ", "stage": "won", "moves": [{"stage": "won"}, {"at": T0, "colour": "red"}]},  # type: ignore[typeddict-item, typeddict-unknown-key]
    ]
    with pytest.raises(guanxi.ValidationError) as bad:
        crm.sales.opportunities.create_many(rows)
    fields = sorted(e.field for e in bad.value.errors)
    expected = ["opportunities[1].amount", "opportunities[1].currency", "opportunities[2].moves[0].at",
                "opportunities[2].moves[1].colour", "opportunities[2].moves[1].stage", "opportunities[2].name"]
    assert fields == expected, fields
    assert crm.sales.opportunities.count() == 0
    made = crm.sales.opportunities.create_many([rows[0], {"name": "CRM", "customer_id": c.id}])
    assert [o.customer_id for o in made] == [c.id, c.id] and made[0].amount == Decimal("80000")
