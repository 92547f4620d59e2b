//! Service data generators and the service conformance cases.

pub mod service_data {
    //! Deterministic pseudo-random tickets and knowledge-base articles, for the conformance
    //! suite and the benchmarks.

    use std::collections::BTreeSet;

    use chrono::{DateTime, Duration, TimeZone, Utc};
    use uuid::Uuid;

    use crate::service::{Article, Channel, Priority, SlaPolicy, Ticket, TicketKind, TicketStatus, select_policy};
    use crate::testing::sales_data::Rng;
    use crate::{ArticleId, DepartmentId, TicketId, UserId};

    /// Agents the generator assigns.
    pub const AGENTS: [&str; 5] = ["amy", "bo", "chen", "dana", "eli"];
    /// Provinces.
    pub const PROVINCES: [&str; 3] = ["山东省", "广东省", "浙江省"];

    /// Chinese and English words articles are made of (pairs of the same meaning).
    pub const WORDS: [(&str, &str); 16] = [
        ("退款", "refund"),
        ("发票", "invoice"),
        ("登录", "login"),
        ("密码", "password"),
        ("物流", "shipping"),
        ("快递", "delivery"),
        ("会员", "member"),
        ("积分", "points"),
        ("优惠券", "coupon"),
        ("订单", "order"),
        ("支付", "payment"),
        ("账户", "account"),
        ("安装", "install"),
        ("保修", "warranty"),
        ("网络", "network"),
        ("路由器", "router"),
    ];

    fn id(base: u128, n: u64) -> Uuid {
        Uuid::from_u128(base + u128::from(n))
    }

    /// A reference instant: Monday 2024-05-06 10:00 Beijing.
    pub fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 6, 2, 0, 0).unwrap()
    }

    /// `n` tickets created in the ten days before [`at`], most of them open, with the default
    /// SLA targets; some answered, some pending, some resolved.
    pub fn tickets(n: u64, seed: u64) -> Vec<Ticket> {
        let mut rng = Rng::new(seed);
        let policies = SlaPolicy::defaults();
        (0..n)
            .map(|i| {
                let created = at() - Duration::seconds(1 + rng.below(10 * 86_400) as i64);
                let kind = TicketKind::ALL[rng.below(4) as usize];
                let priority = Priority::ALL[rng.below(4) as usize];
                let channel = Channel::ALL[rng.below(Channel::ALL.len() as u64) as usize];
                let status = match rng.below(10) {
                    0 => TicketStatus::New,
                    1..=3 => TicketStatus::Assigned,
                    4..=6 => TicketStatus::InProgress,
                    7 => TicketStatus::PendingCustomer,
                    8 => TicketStatus::Resolved,
                    _ => TicketStatus::Closed,
                };
                let span = (at() - created).num_seconds().max(2);
                let answered = status != TicketStatus::New && rng.below(4) > 0;
                let first_response =
                    answered.then(|| created + Duration::seconds(1 + rng.below(span as u64 / 2) as i64));
                let resolved = matches!(status, TicketStatus::Resolved | TicketStatus::Closed)
                    .then(|| created + Duration::seconds(span / 2 + rng.below(span as u64 / 2) as i64));
                let pending = (status == TicketStatus::PendingCustomer)
                    .then(|| first_response.unwrap_or(created) + Duration::seconds(60));
                let agent = (status != TicketStatus::New).then(|| AGENTS[rng.below(AGENTS.len() as u64) as usize]);
                let by = UserId::new("seed").unwrap();
                Ticket {
                    id: TicketId(id(0x0191_0000_0000_7000_8000_0000_0000_0000, i)),
                    code: format!("T{}{:06}", created.format("%Y%m%d"), i + 1),
                    customer_id: None,
                    contact_id: None,
                    kind,
                    priority,
                    channel,
                    category: (i % 3 == 0).then(|| ["账单", "物流", "售后"][(i % 9 / 3) as usize].to_owned()),
                    subject: format!("工单 {i}"),
                    description: None,
                    status,
                    assignee: agent.map(|a| UserId::new(a).unwrap()),
                    group: Some(["l1", "l2"][(i % 2) as usize].to_owned()),
                    skill: None,
                    escalation_level: (i % 7 == 0) as u32,
                    department: agent.map(|_| DepartmentId::new(["east", "south"][(i % 2) as usize]).unwrap()),
                    province: Some(PROVINCES[(i % 3) as usize].to_owned()),
                    customer_level: None,
                    resolution: resolved.map(|_| "已处理".to_owned()),
                    satisfaction: resolved.filter(|_| i % 2 == 0).map(|_| 1 + rng.below(5) as u8),
                    satisfaction_comment: None,
                    risk_flags: if i % 11 == 0 { BTreeSet::from(["投诉".to_owned()]) } else { BTreeSet::new() },
                    sla: select_policy(&policies, priority, kind, None),
                    sla_paused_secs: if i % 5 == 0 { 600 } else { 0 },
                    pending_since: pending,
                    reopen_count: (i % 13 == 0 && resolved.is_some()) as u32,
                    created_at: created,
                    first_response_at: first_response,
                    resolved_at: resolved,
                    closed_at: resolved.filter(|_| status == TicketStatus::Closed),
                    created_by: by.clone(),
                    recorded_at: created,
                    updated_by: by,
                    updated_at: created,
                    version: 1,
                }
            })
            .collect()
    }

    /// Characters the generator's Chinese filler words are made of.
    const HAN: &str = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处府";
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ter", "ban", "vel", "dro", "sin", "po", "ra", "tek", "lu", "mon", "zen", "qui", "fa", "rin",
        "dal", "ex", "or", "ta", "ven", "si", "gu",
    ];

    /// A filler vocabulary of `n` words in each language, so searches hit realistic shares of
    /// the articles (a domain word is in about a fifth of them, a filler word in few).
    fn fillers(n: usize, rng: &mut Rng) -> (Vec<String>, Vec<String>) {
        let han: Vec<char> = HAN.chars().collect();
        let zh = (0..n).map(|_| (0..2).map(|_| han[rng.below(han.len() as u64) as usize]).collect()).collect();
        let en = (0..n)
            .map(|_| (0..2 + rng.below(2)).map(|_| SYLLABLES[rng.below(24) as usize]).collect::<String>())
            .collect();
        (zh, en)
    }

    /// `n` articles mixing Chinese and English, in categories, some unpublished. Each is about
    /// one or two topics of [`WORDS`] (so a topic word is in about a tenth of the articles),
    /// named in its title and tag and mentioned in its body among filler words drawn
    /// log-uniformly from a 3,000-word vocabulary per language (a few fillers are very common,
    /// most rare, as in real text).
    pub fn articles(n: u64, seed: u64) -> Vec<Article> {
        let mut rng = Rng::new(seed);
        let (zh_fill, en_fill) = fillers(3000, &mut rng);
        let filler = |rng: &mut Rng, zh: bool| -> String {
            let pool = if zh { &zh_fill } else { &en_fill };
            // exp(u · ln 3000) − 1 for uniform u: log-uniform ranks, Zipf-like frequencies.
            let u = rng.below(1 << 20) as f64 / f64::from(1 << 20);
            let k = ((u * (pool.len() as f64).ln()).exp() as usize).saturating_sub(1).min(pool.len() - 1);
            pool[k].clone()
        };
        (0..n)
            .map(|i| {
                let zh = i % 2 == 0;
                let topics: Vec<(&str, &str)> =
                    (0..1 + rng.below(2)).map(|_| WORDS[rng.below(WORDS.len() as u64) as usize]).collect();
                let topic =
                    |k: usize, zh: bool| if zh { topics[k % topics.len()].0 } else { topics[k % topics.len()].1 };
                let title = if zh {
                    format!("如何处理{}{}问题", topic(0, true), filler(&mut rng, true))
                } else {
                    format!("How to fix {} {} issues", topic(0, false), filler(&mut rng, false))
                };
                let len = 20 + rng.below(60);
                let body: Vec<String> = (0..len)
                    .map(|k| {
                        let lang = zh || k % 7 == 0;
                        if rng.below(100) < 15 { topic(k as usize, lang).to_owned() } else { filler(&mut rng, lang) }
                    })
                    .collect();
                let body = if zh { body.join("，") } else { body.join(" ") };
                let by = UserId::new("kb").unwrap();
                let at = at() - Duration::days(i as i64 % 300);
                Article {
                    id: ArticleId(id(0x0192_0000_0000_7000_8000_0000_0000_0000, i)),
                    title,
                    body,
                    tags: BTreeSet::from([topic(1, zh).to_owned()]),
                    category: Some(["账单", "物流", "售后", "账户"][(i % 4) as usize].to_owned()),
                    published: i % 10 != 9,
                    created_by: by.clone(),
                    created_at: at,
                    updated_by: by,
                    updated_at: at,
                    version: 1,
                }
            })
            .collect()
    }
}

pub(super) mod cases {
    //! Conformance cases for tickets and the knowledge base.

    use std::collections::BTreeSet;

    use chrono::Duration;

    use super::service_data;
    use crate::service::{
        Article, KbQuery, MatchMode, SlaClock, Ticket, TicketChange, TicketEntry, TicketFilter, TicketKind,
        TicketStatus, rank_articles,
    };
    use crate::*;

    fn walk(store: &dyn CrmStore, f: &TicketFilter) -> Vec<Ticket> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(7);
        loop {
            let p = store.list_tickets(f, &page).unwrap();
            out.extend(p.items);
            match p.next {
                Some(c) => page = PageRequest::after(c, 7),
                None => return out,
            }
        }
    }

    fn entry(t: &Ticket, seq: u32, change: TicketChange) -> TicketEntry {
        TicketEntry { ticket_id: t.id, seq, at: t.created_at, by: t.created_by.clone(), change }
    }

    pub fn tickets_round_trip_filter_and_clock(store: &dyn CrmStore) {
        let tickets = service_data::tickets(60, 7);
        store
            .apply(&Changes {
                tickets: tickets.iter().cloned().map(Write::Insert).collect(),
                ticket_entries: tickets.iter().map(|t| entry(t, 1, TicketChange::Created)).collect(),
                ..Default::default()
            })
            .unwrap();
        for t in &tickets {
            assert_eq!(store.ticket(t.id).unwrap().as_ref(), Some(t));
            assert_eq!(store.ticket_by_code(&t.code).unwrap().as_ref(), Some(t));
        }
        let amy = UserId::new("amy").unwrap();
        let mid = service_data::at() - Duration::days(5);
        let mut filters = vec![
            TicketFilter::default(),
            TicketFilter { open: Some(true), ..Default::default() },
            TicketFilter { open: Some(false), ..Default::default() },
            TicketFilter::default().assignee(amy.clone()),
            TicketFilter { group: Some("l2".into()), open: Some(true), ..Default::default() },
            TicketFilter { kind: Some(TicketKind::Fault), ..Default::default() },
            TicketFilter { created_from: Some(mid), ..Default::default() },
            TicketFilter { created_to: Some(mid), priority: Some(service::Priority::Urgent), ..Default::default() },
            TicketFilter { channel: Some(service::Channel::Email), ..Default::default() },
            TicketFilter { scope: Some(access::RecordScope::owned_by(amy.clone())), ..Default::default() },
            // Scopes reach a ticket's creator as they reach its assignee (every ticket here
            // was opened by "seed"), alone and among other owners.
            TicketFilter {
                scope: Some(access::RecordScope::owned_by(UserId::new("seed").unwrap())),
                ..Default::default()
            },
            TicketFilter {
                scope: Some(access::RecordScope {
                    owners: BTreeSet::from([UserId::new("seed").unwrap(), amy.clone()]),
                    provinces: BTreeSet::from(["广东省".to_owned()]),
                    ..Default::default()
                }),
                open: Some(true),
                ..Default::default()
            },
            TicketFilter {
                scope: Some(access::RecordScope {
                    provinces: BTreeSet::from(["广东省".to_owned()]),
                    departments: BTreeSet::from([DepartmentId::new("east").unwrap()]),
                    ..Default::default()
                }),
                open: Some(true),
                ..Default::default()
            },
        ];
        filters.extend(TicketStatus::ALL.iter().map(|s| TicketFilter::default().status(*s)));
        for f in &filters {
            let expected: Vec<Ticket> = tickets.iter().filter(|t| f.matches(t)).cloned().collect();
            assert_eq!(walk(store, f), expected, "{f:?}");
            assert_eq!(store.count_tickets(f).unwrap(), expected.len() as u64, "{f:?}");
            let clocks: Vec<SlaClock> = expected.iter().map(SlaClock::from).collect();
            let mut got = store.sla_clocks(f).unwrap();
            got.sort_by_key(|c| c.ticket_id);
            assert_eq!(got, clocks, "{f:?}");
        }
        let users: Vec<UserId> = ["amy", "bo", "nobody"].iter().map(|u| UserId::new(u).unwrap()).collect();
        let loads: Vec<u64> = users
            .iter()
            .map(|u| tickets.iter().filter(|t| t.status.is_open() && t.assignee.as_ref() == Some(u)).count() as u64)
            .collect();
        assert_eq!(store.open_ticket_loads(&users).unwrap(), loads);

        // Versions, codes and references are checked; a failed batch leaves everything.
        let t = &tickets[0];
        let mut next = t.clone();
        next.status = TicketStatus::Cancelled;
        next.version = 2;
        let stale = Changes {
            tickets: vec![Write::Update { record: next.clone(), expected_version: 5 }],
            ..Default::default()
        };
        assert!(matches!(store.apply(&stale), Err(Error::Conflict { .. })));
        let mut twin = tickets[1].clone();
        twin.id = TicketId(uuid::Uuid::from_u128(1));
        let dup = Changes { tickets: vec![Write::Insert(twin)], ..Default::default() };
        assert!(matches!(store.apply(&dup), Err(Error::Duplicate { .. })));
        let mut orphan = tickets[1].clone();
        orphan.id = TicketId(uuid::Uuid::from_u128(2));
        orphan.code = "T-orphan".into();
        orphan.customer_id = Some(CustomerId(uuid::Uuid::from_u128(3)));
        let orphan = Changes { tickets: vec![Write::Insert(orphan)], ..Default::default() };
        assert!(matches!(store.apply(&orphan), Err(Error::NotFound { entity: EntityKind::Customer, .. })));
        store
            .apply(&Changes {
                tickets: vec![Write::Update { record: next.clone(), expected_version: 1 }],
                ticket_entries: vec![entry(
                    t,
                    2,
                    TicketChange::Status { from: t.status, to: TicketStatus::Cancelled, resolution: None },
                )],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(store.ticket(t.id).unwrap(), Some(next));
        assert_eq!(store.ticket_entries(t.id).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);

        // Entries are append-only and need their ticket.
        let again = Changes { ticket_entries: vec![entry(t, 2, TicketChange::Created)], ..Default::default() };
        assert!(matches!(store.apply(&again), Err(Error::Duplicate { .. })));
        let mut lost = entry(t, 1, TicketChange::Created);
        lost.ticket_id = TicketId(uuid::Uuid::from_u128(9));
        let lost = Changes { ticket_entries: vec![lost], ..Default::default() };
        assert!(matches!(store.apply(&lost), Err(Error::NotFound { .. })));
        assert_eq!(store.ticket_entries(t.id).unwrap().len(), 2);
    }

    fn same_hits(store: &dyn CrmStore, all: &[Article], q: &KbQuery) {
        let got = store.search_articles(q).unwrap();
        let want = rank_articles(all, q);
        let ids = |h: &[service::ArticleHit]| h.iter().map(|x| x.article.id).collect::<BTreeSet<_>>();
        if got.len() == want.len() && q.limit > want.len() {
            assert_eq!(ids(&got), ids(&want), "{q:?}");
        } else {
            assert_eq!(got.len(), want.len().min(q.limit), "{q:?}");
        }
        for w in got.windows(2) {
            assert!(w[0].score >= w[1].score - 1e-9, "{q:?}: not best first");
        }
        for g in &got {
            if let Some(r) = want.iter().find(|r| r.article.id == g.article.id) {
                assert!(
                    (g.score - r.score).abs() <= 1e-9 * r.score.abs().max(1.0),
                    "{q:?}: {} vs {}",
                    g.score,
                    r.score
                );
                assert_eq!(g.article, r.article);
            }
        }
    }

    pub fn article_search_equals_the_reference(store: &dyn CrmStore) {
        let mut all = service_data::articles(80, 3);
        store
            .apply(&Changes { articles: all.iter().cloned().map(Write::Insert).collect(), ..Default::default() })
            .unwrap();
        let mut queries = vec![
            KbQuery::new("退款").limit(100),
            KbQuery::new("如何申请退款").limit(100),
            KbQuery::new("refund invoice").limit(100),
            KbQuery::new("Refund 发票").mode(MatchMode::Any).limit(100),
            KbQuery::new("路由器 network").mode(MatchMode::Any).limit(5),
            KbQuery::new("优惠券"),
            KbQuery::new("nothing-like-this"),
            KbQuery::new("，。"),
        ];
        let mut scoped = KbQuery::new("订单 order").mode(MatchMode::Any).limit(100);
        scoped.category = Some("物流".into());
        queries.push(scoped);
        let mut tagged = KbQuery::new("account 账户").mode(MatchMode::Any).limit(100);
        tagged.tag = Some("账户".into());
        tagged.include_unpublished = true;
        queries.push(tagged);
        for q in &queries {
            same_hits(store, &all, q);
        }
        assert!(!store.search_articles(&KbQuery::new("退款")).unwrap().is_empty());

        // A clear winner ranks first: the word in the title and often in the body.
        let by = UserId::new("kb").unwrap();
        let special = Article {
            id: ArticleId(uuid::Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001)),
            title: "发票抬头填错了怎么办".into(),
            body: "发票抬头错误时，可在订单页申请重开发票。重开发票需要三个工作日。".into(),
            tags: BTreeSet::from(["发票".to_owned()]),
            category: Some("账单".into()),
            published: true,
            created_by: by.clone(),
            created_at: service_data::at(),
            updated_by: by,
            updated_at: service_data::at(),
            version: 1,
        };
        store.apply(&Changes { articles: vec![Write::Insert(special.clone())], ..Default::default() }).unwrap();
        all.push(special.clone());
        let top = store.search_articles(&KbQuery::new("发票抬头")).unwrap();
        assert_eq!(top[0].article.id, special.id);
        same_hits(store, &all, &KbQuery::new("发票抬头").limit(100));

        // Updates re-index; unpublished articles are hidden unless asked for.
        let mut edited = special.clone();
        edited.body = "Invoices are reissued within three working days.".into();
        edited.published = false;
        edited.version = 2;
        store
            .apply(&Changes {
                articles: vec![Write::Update { record: edited.clone(), expected_version: 1 }],
                ..Default::default()
            })
            .unwrap();
        *all.last_mut().unwrap() = edited.clone();
        let mut hidden = KbQuery::new("reissued");
        assert!(store.search_articles(&hidden).unwrap().is_empty());
        hidden.include_unpublished = true;
        assert_eq!(store.search_articles(&hidden).unwrap()[0].article, edited);
        let mut gone = KbQuery::new("重开发票");
        gone.include_unpublished = true;
        assert!(store.search_articles(&gone).unwrap().iter().all(|h| h.article.id != special.id));
        same_hits(store, &all, &KbQuery::new("invoice reissued").mode(MatchMode::Any).limit(200));
        // More terms than an any-query ranks by: the rarest are chosen from the live index
        // (重开 and 抬头 left it with the edit).
        let many = "重开 抬头 reissued invoice 退款 refund order coupon login 如何 处理 账户 network";
        same_hits(store, &all, &KbQuery::new(many).mode(MatchMode::Any).limit(200));
        assert_eq!(store.article(special.id).unwrap(), Some(edited));
        let stale =
            Changes { articles: vec![Write::Update { record: special, expected_version: 1 }], ..Default::default() };
        assert!(matches!(store.apply(&stale), Err(Error::Conflict { .. })));
    }
}
