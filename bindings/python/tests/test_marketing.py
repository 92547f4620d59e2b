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
    assert events[0]["contact_id"] is None
    with pytest.raises(guanxi.ValidationError) as info:
        crm.marketing.events.record([{"customer_id": c.id, "contact_id": "nope", "name": "x", "at": NOW}])
    assert info.value.field == "events[0].contact_id"
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


def test_a_saved_segment_keeps_its_members_and_tag_as_events_arrive(crm: guanxi.Crm) -> None:
    day = datetime.timedelta(days=1)
    wang = crm.customers.create("王芳", kind="individual")
    li = crm.customers.create("李娜", kind="individual", tags=["VIP"])
    rule = 'count(event = "page_view", url ~ "ielts", within = 30d) >= 3 AND count(event = enroll) = 0'
    saved = crm.marketing.segments.save("雅思意向", rule, description="IELTS intent", tag="雅思意向")
    assert (saved["name"], saved["tag"], saved["sticky"], saved["includes"]) == ("雅思意向", "雅思意向", False, [])
    assert len(crm.marketing.segments.current("雅思意向")) == 0
    crm.marketing.events.record([
        {"customer_id": wang.id, "name": "page_view", "at": NOW - d * day, "properties": {"url": "/ielts"}}
        for d in (1, 2, 3)
    ])
    current = crm.marketing.segments.current("雅思意向")
    assert [(r["customer_id"], r["entered_because"]) for r in current] == [(str(wang.id), "matched")]
    assert list(current.to_pandas()["customer_id"]) == [str(wang.id)]
    assert "雅思意向" in crm.customers.get(wang.id).tags
    crm.marketing.events.record([{"customer_id": wang.id, "name": "enroll", "at": NOW}])
    assert len(crm.marketing.segments.current("雅思意向")) == 0
    assert "雅思意向" not in crm.customers.get(wang.id).tags
    stays = crm.marketing.segments.history("雅思意向", customer_id=wang.id).to_polars()
    assert stays["exited_because"].to_list() == ["no_longer_matches"]

    # Manual members survive re-evaluation; the manual lists are kept when saved again.
    crm.marketing.segments.include("雅思意向", [li.id])
    crm.marketing.segments.save("雅思意向", rule, tag="雅思意向", sticky=True)
    assert crm.marketing.segments.get("雅思意向")["includes"] == [li.id]
    assert crm.marketing.segments.reevaluate("雅思意向") == {"entered": {}, "exited": {}}
    page = crm.marketing.segments.current("雅思意向", limit=1)
    assert [r["entered_because"] for r in page] == ["included"] and page.next is None
    assert crm.marketing.segments.reevaluate_due() == {"entered": {}, "exited": {}}
    crm.marketing.segments.exclude("雅思意向", [li.id])
    assert len(crm.marketing.segments.current("雅思意向")) == 0
    assert "雅思意向" in crm.customers.get(li.id).tags  # sticky
    crm.marketing.segments.reset_manual("雅思意向", [li.id])

    # References to saved segments; cycles and unknown names refused; deletion keeps history.
    crm.marketing.segments.save("vip", "tag:VIP")
    crm.marketing.segments.save("vip_ielts", "segment:vip AND segment:雅思意向")
    assert [s["name"] for s in crm.marketing.segments.list()] == ["vip", "vip_ielts", "雅思意向"]
    with pytest.raises(guanxi.ValidationError) as info:
        crm.marketing.segments.save("vip", "segment:vip_ielts")
    assert "cycle" in str(info.value)
    with pytest.raises(guanxi.ValidationError):
        crm.marketing.segments.delete("vip")
    crm.marketing.segments.delete("vip_ielts")
    with pytest.raises(guanxi.NotFoundError):
        crm.marketing.segments.get("vip_ielts")
    with pytest.raises(guanxi.ValidationError) as info:
        crm.marketing.segments.include("vip", ["not an id"])
    assert info.value.field == "customer_ids[0]"
