"""Service from Python: settings as dicts, the ticket lifecycle with SLA in business time,
assignment, refused moves, the knowledge base in Chinese and English, and the service report
whose tables are checked against pure-Python calculations."""

from __future__ import annotations

import csv
import datetime as dt
import statistics
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

import guanxi

UTC = dt.timezone.utc
REPO = Path(__file__).resolve().parents[3]


def desk(crm: guanxi.Crm, *, around_the_clock: bool = False) -> dict:
    s = crm.service.settings()
    s["groups"] = [
        {
            "key": "l1",
            "name": "一线",
            "strategy": "round_robin",
            "agents": [{"user": "amy"}, {"user": "bo"}],
            "escalate_to": "l2",
        },
        {"key": "l2", "name": "二线", "strategy": "least_loaded", "agents": [{"user": "chen"}]},
    ]
    s["default_group"] = "l1"
    if around_the_clock:
        day = [{"start": "00:00:00", "end": "23:59:59"}]
        s["calendar"] = {"utc_offset_minutes": 0, "weekly": [day] * 7, "holidays": [], "working_days": []}
    return crm.service.set_settings(s)


def test_settings_round_trip_and_bad_settings_name_the_field(crm: guanxi.Crm) -> None:
    s = desk(crm)
    assert s["default_group"] == "l1" and s["at_risk_percent"] == 20
    assert s["calendar"]["utc_offset_minutes"] == 480 and len(s["calendar"]["weekly"]) == 7
    assert [p["name"] for p in s["sla_policies"]] == ["urgent", "high", "medium", "low"]
    s["groups"][1]["escalate_to"] = "l1"  # a loop
    with pytest.raises(guanxi.ValidationError) as bad:
        crm.service.set_settings(s)
    assert bad.value.field.startswith("groups[")
    assert crm.service.settings()["groups"][1].get("escalate_to") is None


def test_lifecycle_sla_and_refused_moves(crm: guanxi.Crm) -> None:
    desk(crm, around_the_clock=True)
    t0 = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(days=3)
    t = crm.service.tickets.create(
        "无法登录", kind="fault", priority="high", description="一直提示密码错误，我要投诉", created_at=t0
    )
    assert (t.status, t.assignee, t.group, t.sla_policy) == ("assigned", "amy", "l1", "high")
    assert t.risk_flags == {"投诉"} and t.code.startswith("T")
    # Round robin: the next goes to bo.
    assert crm.service.tickets.create("x", kind="inquiry", priority="low").assignee == "bo"
    with pytest.raises(guanxi.InvalidStateError):
        crm.service.tickets.move_to(t.id, t.version, "closed")
    assert crm.service.tickets.get(t.id) == t  # unchanged
    with pytest.raises(guanxi.ValidationError):
        crm.service.tickets.create("x", kind="gripe", priority="low")  # type: ignore[arg-type]

    h = dt.timedelta(hours=1)
    t = crm.service.tickets.move_to(t.id, t.version, "in_progress", at=t0 + h)
    t = crm.service.tickets.reply(t.id, t.version, "请提供截图", at=t0 + 2 * h)
    t = crm.service.tickets.move_to(t.id, t.version, "pending_customer", at=t0 + 2 * h)
    t = crm.service.tickets.move_to(t.id, t.version, "in_progress", at=t0 + 12 * h)
    assert t.sla_paused_secs == 10 * 3600 and t.first_response_at == t0 + 2 * h
    with pytest.raises(guanxi.ValidationError) as bad:
        crm.service.tickets.move_to(t.id, t.version, "resolved")
    assert bad.value.field == "resolution"
    t = crm.service.tickets.move_to(t.id, t.version, "resolved", resolution="已重置密码", at=t0 + 14 * h)
    t = crm.service.tickets.rate(t.id, t.version, 2, comment="太慢了，不满")
    assert t.satisfaction == 2 and "不满" in t.risk_flags
    with pytest.raises(guanxi.InvalidStateError):
        crm.service.tickets.rate(t.id, t.version, 5)

    sla = pa.table(crm.service.sla_overview(at=t0 + 20 * h)).to_pylist()
    mine = next(r for r in sla if r["code"] == t.code)
    # Around the clock, business time is wall time: 14 h open minus 10 h pending.
    assert mine["resolution_used_secs"] == 4 * 3600 and mine["resolution_state"] == "met"
    assert mine["first_response_state"] == "breached"  # 2 h against a 1 h target
    assert mine["breached"] is True
    other = next(r for r in sla if r["code"] != t.code)
    assert other["first_response_state"] in {"running", "at_risk", "breached"}

    types = [e.type for e in crm.service.tickets.entries(t.id)]
    assert types == ["created", "assigned", "status", "reply", "status", "status", "status", "rated"]
    assert crm.service.tickets.entries(t.id)[3].details == {"body": "请提供截图", "public": True, "risk_flags": []}


def test_assignment_transfer_and_escalation(crm: guanxi.Crm) -> None:
    desk(crm)
    t = crm.service.tickets.create("系统宕机", kind="fault", priority="urgent")
    t = crm.service.tickets.assign(t.id, t.version, agent="bo", note="bo 熟悉")
    assert t.assignee == "bo"
    t = crm.service.tickets.escalate(t.id, t.version, note="二线处理")
    assert (t.group, t.assignee, t.escalation_level) == ("l2", "chen", 1)
    with pytest.raises(guanxi.InvalidStateError):
        crm.service.tickets.escalate(t.id, t.version)
    reasons = [e.details["reason"] for e in crm.service.tickets.entries(t.id) if e.type == "assigned"]
    assert reasons == ["auto", "transfer", "escalation"]
    t = crm.service.tickets.set_priority(t.id, t.version, "low")
    assert t.sla_policy == "low"


def test_report_tables_equal_a_pure_python_calculation(crm: guanxi.Crm) -> None:
    desk(crm, around_the_clock=True)
    now = dt.datetime.now(UTC).replace(microsecond=0)
    start = now - dt.timedelta(days=10)
    kinds = ["inquiry", "complaint", "suggestion", "fault"]
    expected_fr, expected_res = [], []
    ratings: dict[str, list[int]] = defaultdict(list)
    for i in range(40):
        created = start + dt.timedelta(hours=5 * i)
        t = crm.service.tickets.create(
            f"问题 {i}", kind=kinds[i % 4], priority="medium", category=["账单", "物流"][i % 2], created_at=created
        )
        if i % 3 == 0:
            continue  # stays open
        replied = created + dt.timedelta(minutes=7 * i + 5)
        t = crm.service.tickets.move_to(t.id, t.version, "in_progress", at=created)
        t = crm.service.tickets.reply(t.id, t.version, "已收到", at=replied)
        expected_fr.append(int((replied - created).total_seconds()))
        if i % 3 == 1:
            resolved = replied + dt.timedelta(minutes=11 * i)
            t = crm.service.tickets.move_to(t.id, t.version, "resolved", resolution="ok", at=resolved)
            expected_res.append(int((resolved - created).total_seconds()))
            if i % 2 == 1:
                score = 1 + i % 5
                crm.service.tickets.rate(t.id, t.version, score)
                ratings[["账单", "物流"][i % 2]].append(score)

    r = crm.service.report(period="week", at=now)
    assert r.tickets == 40
    tickets = crm.service.tickets.list_all()
    by_status = {x["status"]: x["count"] for x in pa.table(r.by_status).to_pylist()}
    assert by_status == dict(Counter(t.status for t in tickets))
    volume = pa.table(r.volume)
    assert sum(volume.column("count").to_pylist()) == 40
    assert volume.schema.field("period").type == pa.date32()

    times = {row["metric"]: row for row in pa.table(r.times).to_pylist()}

    def check(row: dict, values: list[int]) -> None:
        values = sorted(values)
        n = len(values)
        median = values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) // 2
        p90 = values[max(1, -(-9 * n // 10)) - 1]
        assert (row["count"], row["mean_secs"], row["median_secs"], row["p90_secs"]) == (
            n,
            sum(values) // n,
            median,
            p90,
        )

    check(times["first_response"], expected_fr)
    check(times["resolution"], expected_res)

    csat = [row for row in pa.table(r.csat).to_pylist() if row["by"] == "category"]
    for row in csat:
        scores = ratings[row["key"]]
        assert row["responses"] == len(scores)
        assert row["mean"] == Decimal(str(round(statistics.mean(scores), 4))).normalize()
        assert row["satisfied_rate"] == Decimal(str(round(sum(s >= 4 for s in scores) / len(scores), 4))).normalize()
    backlog = {row["assignee"]: row["open"] for row in pa.table(r.backlog).to_pylist()}
    assert sum(backlog.values()) == sum(t.status in {"new", "assigned", "in_progress", "pending_customer"} for t in tickets)
    assert r.reopen_rate == Decimal(0)
    table = pa.table(crm.service.tickets.list_all(kind="fault"))
    assert table.num_rows == 10 and set(table.column("kind").to_pylist()) == {"fault"}


def test_knowledge_base_in_chinese_and_english(crm: guanxi.Crm) -> None:
    refund = crm.kb.create(
        "如何申请退款", "在订单详情页点击“申请退款”，审核通过后三个工作日内原路退回。", tags=["退款"], category="账单"
    )
    crm.kb.create("Reset your password", "Use the forgot-password link on the login page.")
    crm.kb.create("退款草稿", "内部讨论", published=False)
    hits = crm.kb.search("退款")
    assert [h.article.title for h in hits] == ["如何申请退款"] and hits[0].score > 0
    assert [h.article.title for h in crm.kb.search("PASSWORD login")] == ["Reset your password"]
    assert len(crm.kb.search("退款", include_unpublished=True)) == 2
    assert crm.kb.search("退款", category="物流") == []
    t = crm.service.tickets.create("我想退款，订单怎么操作", kind="complaint", priority="medium")
    assert crm.kb.suggest(t.id)[0].article.id == refund.id
    edited = crm.kb.update(refund.id, refund.version, "如何申请退款", "一个工作日到账。", tags=["退款"])
    assert edited.version == 2 and crm.kb.search("三个工作日") == []
    with pytest.raises(guanxi.ConflictError):
        crm.kb.update(refund.id, 1, "x", "y")
    with pytest.raises(guanxi.ValidationError):
        crm.kb.create("", "")


KINDS = {"Technical issue": "fault", "Billing inquiry": "inquiry", "Product inquiry": "inquiry",
         "Refund request": "complaint", "Cancellation request": "complaint"}
PRIORITIES = {"Low": "low", "Medium": "medium", "High": "high", "Critical": "urgent"}
CHANNELS = {"Email": "email", "Phone": "phone", "Chat": "chat", "Social media": "social"}


def test_create_many_raises_the_real_tickets_in_one_call_and_round_robin_alternates(crm: guanxi.Crm) -> None:
    desk(crm)
    with open(REPO / "tests" / "data" / "tickets_first_1000.csv", encoding="utf-8-sig", newline="") as f:
        records = list(csv.DictReader(f))[:300]
    rows: list[guanxi.fields.NewTicket] = [
        {
            "subject": r["Ticket Subject"],
            "kind": KINDS[r["Ticket Type"]],  # type: ignore[typeddict-item]
            "priority": PRIORITIES[r["Ticket Priority"]],  # type: ignore[typeddict-item]
            "channel": CHANNELS[r["Ticket Channel"]],  # type: ignore[typeddict-item]
            "description": r["Ticket Description"],
        }
        for r in records
    ]
    made = crm.service.tickets.create_many(rows)
    assert [t.subject for t in made] == [r["Ticket Subject"] for r in records]
    assert Counter(t.priority.value for t in made) == Counter(PRIORITIES[r["Ticket Priority"]] for r in records)
    assert len({t.code for t in made}) == len(made)
    # Round robin over amy and bo takes its turns in order through the batch.
    assignees = [t.assignee for t in made]
    assert set(assignees) == {"amy", "bo"} and all(a != b for a, b in zip(assignees, assignees[1:]))
    assert crm.service.tickets.count() == len(records)
    assert [e.type for e in crm.service.tickets.entries(made[-1].id)] == ["created", "assigned"]


def test_create_many_tickets_is_all_or_nothing_and_names_each_row(crm: guanxi.Crm) -> None:
    rows: list[guanxi.fields.NewTicket] = [
        {"subject": "无法登录", "kind": "fault", "priority": "high"},
        {"subject": "发票", "kind": "question", "priority": "low", "colour": "red"},  # type: ignore[typeddict-item, typeddict-unknown-key]
        {"subject": " ", "kind": "inquiry"},  # type: ignore[typeddict-item]
    ]
    with pytest.raises(guanxi.ValidationError) as bad:
        crm.service.tickets.create_many(rows)
    fields = sorted(e.field for e in bad.value.errors)
    assert fields == ["tickets[1].colour", "tickets[1].kind", "tickets[2].priority"], fields
    assert "complaint" in next(e for e in bad.value.errors if e.field == "tickets[1].kind").allowed
    with pytest.raises(guanxi.ValidationError) as core:
        crm.service.tickets.create_many([rows[0], {"subject": " ", "kind": "inquiry", "priority": "low"}])
    assert core.value.field == "tickets[1].subject"
    assert crm.service.tickets.count() == 0
