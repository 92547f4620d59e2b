"""Behaviour events and segments from Python: bulk ingest checked and idempotent, the seed's
IELTS segment as a DataFrame, explain, and syntax errors that say where."""

from __future__ import annotations

import datetime

import pytest

import guanxi
from guanxi.fields import NewBehaviourEvent

NOW = datetime.datetime.now(datetime.timezone.utc)


def test_events_are_checked_idempotent_and_read_back_in_time_order(crm: guanxi.Crm) -> None:
    c = crm.customers.create("李雷", kind="individual")
    with pytest.raises(guanxi.ValidationError) as info:
        crm.marketing.events.record([
            {"customer_id": c.id, "name": "page_view", "at": NOW},
            {"customer_id": c.id, "name": " ", "at": NOW},
            {"customer_id": c.id, "name": "x", "at": NOW, "colour": "red"},  # type: ignore[typeddict-unknown-key]
        ])
    assert sorted(e.field for e in info.value.errors) == ["events[1].name", "events[2].colour"]
    assert crm.marketing.events.list(c.id) == []
    day = datetime.timedelta(days=1)
    first = crm.marketing.events.record([
        {"customer_id": c.id, "name": "page_view", "at": NOW - 2 * day, "properties": {"url": "/b"}, "external_id": "w2"},
        {"customer_id": str(c.id), "name": "page_view", "at": NOW - 3 * day, "properties": {"url": "/a"}},
    ])
    again = crm.marketing.events.record([
        {"customer_id": c.id, "name": "page_view", "at": NOW - 2 * day, "properties": {"url": "/b"}, "external_id": "w2"},
    ])
    assert (len(first["recorded"]), again["recorded"], again["duplicates"]) == (2, [], ["w2"])
    events = crm.marketing.events.list(c.id)
    assert [e["properties"]["url"] for e in events] == ["/a", "/b"]
    assert events[1]["external_id"] == "w2" and events[0]["at"] < events[1]["at"]
    assert len(crm.marketing.events.list(c.id, since=NOW - 2 * day - datetime.timedelta(minutes=1))) == 1


def test_the_ielts_segment_as_a_dataframe_and_why(crm: guanxi.Crm) -> None:
    day = datetime.timedelta(days=1)
    wang = crm.customers.create("王芳", kind="individual")
    li = crm.customers.create("李娜", kind="individual")
    views: list[NewBehaviourEvent] = [
        {"customer_id": who.id, "name": "page_view", "at": NOW - d * day, "properties": {"url": "/courses/ielts"}}
        for who in (wang, li)
        for d in (1, 2)
    ]
    views.append({"customer_id": wang.id, "name": "page_view", "at": NOW - 20 * day, "properties": {"url": "/ielts"}})
    crm.marketing.events.record(views)
    rule = 'count(event = "page_view", url ~ "ielts", within = 30d) >= 3 AND NOT tag:雅思学员'
    members = crm.marketing.segments.members(rule)
    assert [c.name for c in members] == ["王芳"]
    assert list(members.to_pandas()["name"]) == ["王芳"]
    why = crm.marketing.segments.explain(li.id, rule)
    assert why["holds"] is False and why["parts"][0]["count"] == 2 and why["parts"][1]["holds"] is True
    with pytest.raises(guanxi.ValidationError) as info:
        crm.marketing.segments.members("tag:VIP AND\n  status >")
    assert info.value.field == "segment" and "line 2, column 11" in str(info.value)


def test_segment_members_page_and_count_agree(crm: guanxi.Crm) -> None:
    for n in range(5):
        crm.customers.create(f"客户{n}", tags=["VIP"] if n % 2 == 0 else [])
    vip = "tag:VIP AND NOT status = lost"
    assert crm.marketing.segments.count(vip) == 3
    first = crm.marketing.segments.members_page(vip, limit=2)
    assert len(first) == 2 and first.next is not None
    rest = crm.marketing.segments.members_page(vip, after=first.next, limit=2)
    assert len(rest) == 1 and rest.next is None
    assert [c.name for c in first] + [c.name for c in rest] == [c.name for c in crm.marketing.segments.members(vip)]


def test_a_retention_refuses_older_events_and_purges_them(crm: guanxi.Crm) -> None:
    c = crm.customers.create("李雷", kind="individual")
    day = datetime.timedelta(days=1)
    crm.marketing.events.record([{"customer_id": c.id, "name": "page_view", "at": NOW - d * day} for d in (1, 40)])
    assert crm.marketing.settings() == {"event_retention_days": None}
    assert crm.marketing.events.purge() == {"before": None, "purged": 0}
    assert crm.marketing.set_settings(event_retention_days=30) == {"event_retention_days": 30}
    with pytest.raises(guanxi.ValidationError) as info:
        crm.marketing.events.record([{"customer_id": c.id, "name": "page_view", "at": NOW - 31 * day}])
    assert info.value.field == "events[0].at" and "retention of 30 days" in str(info.value)
    with pytest.raises(guanxi.ValidationError):
        crm.marketing.set_settings(event_retention_days=0)
    done = crm.marketing.events.purge()
    assert done["purged"] == 1 and done["before"] is not None
    assert len(crm.marketing.events.list(c.id)) == 1


def test_segments_as_trees_read_back_as_text(crm: guanxi.Crm) -> None:
    crm.customers.create("甲", tags=["VIP"])
    crm.customers.create("乙")
    tree = crm.marketing.segments.parse("tag:VIP AND NOT status = lost")
    assert tree == {"and": [{"is": {"tag": "VIP"}}, {"not": {"is": {"field": {"field": "status", "op": "eq", "value": {"text": "lost"}}}}}]}
    assert crm.marketing.segments.to_text(tree) == "tag:VIP AND NOT status = lost"
    assert [c.name for c in crm.marketing.segments.members(tree)] == ["甲"]
    tree["and"][0] = {"is": {"tag": "新客"}}
    assert crm.marketing.segments.count(tree) == 0
    with pytest.raises(guanxi.ValidationError) as info:
        crm.marketing.segments.count({"and": [{"is": {"colour": "red"}}]})
    assert info.value.field == "segment"
    with pytest.raises(guanxi.ValidationError) as info:
        crm.marketing.segments.count({"or": [{"is": {"tag": f"t{i}"}} for i in range(300)]})
    assert info.value.field == "segment"
