//! Service analytics: volume over time, response and resolution times in business time, SLA
//! compliance, reopen rate, CSAT by kind, category and agent, backlog per agent. A pure
//! reduction over tickets ([`ServiceReport::from_tickets`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::calendar::BusinessClock;
use super::quality::{Csat, ratio};
use super::sla::{SlaClock, SlaEvaluator, SlaState};
use super::ticket::{Channel, Priority, Ticket, TicketFilter, TicketKind, TicketStatus};
use crate::error::Result;
use crate::ids::UserId;
use crate::macros::vocabulary;

vocabulary! {
    /// The length of the periods volume is counted in.
    #[derive(Default)]
    pub enum Period {
        /// Calendar days.
        #[default]
        Day = "day" / "日",
        /// Weeks starting on Monday.
        Week = "week" / "周",
        /// Calendar months.
        Month = "month" / "月",
    }
}

impl Period {
    /// The first day of the period holding `day`.
    ///
    /// ```
    /// use guanxi_core::service::Period;
    /// let d = chrono::NaiveDate::from_ymd_opt(2024, 5, 9).unwrap();
    /// assert_eq!(Period::Week.start_of(d).to_string(), "2024-05-06");
    /// assert_eq!(Period::Month.start_of(d).to_string(), "2024-05-01");
    /// ```
    pub fn start_of(self, day: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => day,
            Period::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
            Period::Month => day.with_day(1).unwrap_or(day),
        }
    }
}

/// What a service report covers: the tickets matching `filter` (its `created_from` /
/// `created_to` are the time range), volume counted per `period` in the calendar's local
/// days, SLA states and backlog at `at` (default now).
///
/// ```
/// use guanxi_core::service::{Period, ServiceQuery};
/// let q = ServiceQuery::default().period(Period::Month);
/// assert_eq!(q.period, Period::Month);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceQuery {
    /// Which tickets.
    pub filter: TicketFilter,
    /// Volume period.
    pub period: Period,
    /// The instant open tickets are judged at.
    pub at: Option<DateTime<Utc>>,
}

impl ServiceQuery {
    /// Sets the period.
    pub fn period(mut self, period: Period) -> Self {
        self.period = period;
        self
    }

    /// Sets the instant.
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = Some(at);
        self
    }
}

/// Tickets created in one period with one kind, channel and priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRow {
    /// First day of the period.
    pub period: NaiveDate,
    /// Kind.
    pub kind: TicketKind,
    /// Channel.
    pub channel: Channel,
    /// Priority.
    pub priority: Priority,
    /// Tickets.
    pub count: u64,
}

/// Durations in business seconds.
///
/// ```
/// use guanxi_core::service::DurationStats;
/// let s = DurationStats::from_secs(vec![10, 20, 30, 40]);
/// assert_eq!((s.count, s.mean_secs, s.median_secs, s.p90_secs), (4, Some(25), Some(25), Some(40)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationStats {
    /// How many.
    pub count: u64,
    /// Mean, rounded down to a second.
    pub mean_secs: Option<i64>,
    /// Median (mean of the two middle values when even, rounded down).
    pub median_secs: Option<i64>,
    /// 90th percentile, nearest rank.
    pub p90_secs: Option<i64>,
}

impl DurationStats {
    /// Statistics of the values.
    pub fn from_secs(mut v: Vec<i64>) -> DurationStats {
        if v.is_empty() {
            return DurationStats::default();
        }
        v.sort_unstable();
        let n = v.len();
        let sum: i128 = v.iter().map(|x| i128::from(*x)).sum();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]).div_euclid(2) };
        let rank = (9 * n).div_ceil(10).max(1);
        DurationStats {
            count: n as u64,
            mean_secs: i64::try_from(sum.div_euclid(n as i128)).ok(),
            median_secs: Some(median),
            p90_secs: Some(v[rank - 1]),
        }
    }
}

/// SLA compliance of the decided targets (met or breached) of one kind of target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compliance {
    /// Met.
    pub met: u64,
    /// Breached.
    pub breached: u64,
    /// met / (met + breached), to 4 places.
    pub rate: Option<Decimal>,
}

impl Compliance {
    fn add(&mut self, state: SlaState) {
        match state {
            SlaState::Met => self.met += 1,
            SlaState::Breached => self.breached += 1,
            _ => {}
        }
    }

    fn finish(mut self) -> Self {
        self.rate = ratio(self.met, self.met + self.breached);
        self
    }
}

/// An agent's open tickets at the report's instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backlog {
    /// Agent (None: unassigned).
    pub assignee: Option<UserId>,
    /// Open tickets.
    pub open: u64,
    /// Of which breaching a target.
    pub breached: u64,
    /// Of which at risk.
    pub at_risk: u64,
}

/// A keyed CSAT row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedCsat {
    /// Kind name, category or agent id.
    pub key: String,
    /// Figures.
    pub csat: Csat,
}

/// The service report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceReport {
    /// When open tickets were judged.
    pub at: DateTime<Utc>,
    /// Tickets covered.
    pub tickets: u64,
    /// Tickets per status.
    pub by_status: Vec<(TicketStatus, u64)>,
    /// Volume per period, kind, channel and priority.
    pub volume: Vec<VolumeRow>,
    /// Creation to first public reply.
    pub first_response: DurationStats,
    /// Creation to resolution, minus paused time (resolved and closed tickets).
    pub resolution: DurationStats,
    /// First-response targets met.
    pub first_response_sla: Compliance,
    /// Resolution targets met.
    pub resolution_sla: Compliance,
    /// Tickets ever resolved.
    pub resolved: u64,
    /// Of those, reopened at least once.
    pub reopened: u64,
    /// reopened / resolved, to 4 places.
    pub reopen_rate: Option<Decimal>,
    /// Ratings over all tickets.
    pub csat: Csat,
    /// Ratings per kind.
    pub csat_by_kind: Vec<KeyedCsat>,
    /// Ratings per category.
    pub csat_by_category: Vec<KeyedCsat>,
    /// Ratings per assignee.
    pub csat_by_agent: Vec<KeyedCsat>,
    /// Open tickets per assignee.
    pub backlog: Vec<Backlog>,
    /// Tickets flagged by risk keywords.
    pub flagged: u64,
}

fn keyed(groups: BTreeMap<String, Vec<u8>>) -> Vec<KeyedCsat> {
    groups.into_iter().map(|(key, scores)| KeyedCsat { key, csat: Csat::from_scores(scores) }).collect()
}

impl ServiceReport {
    /// The report over `tickets` (already filtered) at `at`.
    pub fn from_tickets<'a>(
        tickets: impl IntoIterator<Item = &'a Ticket>,
        clock: &BusinessClock,
        period: Period,
        at: DateTime<Utc>,
        at_risk_percent: u8,
    ) -> Result<ServiceReport> {
        let eval = SlaEvaluator::new(clock, at, at_risk_percent);
        let mut by_status: BTreeMap<TicketStatus, u64> = BTreeMap::new();
        let mut volume: BTreeMap<(NaiveDate, TicketKind, Channel, Priority), u64> = BTreeMap::new();
        let (mut fr, mut res) = (Vec::new(), Vec::new());
        let (mut fr_sla, mut res_sla) = (Compliance::default(), Compliance::default());
        let (mut resolved, mut reopened, mut flagged, mut n) = (0, 0, 0, 0);
        let mut scores = Vec::new();
        let (mut by_kind, mut by_category, mut by_agent) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        let mut backlog: BTreeMap<Option<UserId>, Backlog> = BTreeMap::new();
        for t in tickets {
            n += 1;
            *by_status.entry(t.status).or_default() += 1;
            let day = period.start_of(clock.local_date(t.created_at));
            *volume.entry((day, t.kind, t.channel, t.priority)).or_default() += 1;
            let start = clock.seconds_at(t.created_at);
            if let Some(f) = t.first_response_at {
                fr.push((clock.seconds_at(f) - start).max(0));
            }
            if let Some(r) = t.resolved_at {
                res.push((clock.seconds_at(r) - start - t.sla_paused_secs).max(0));
            }
            let ever_resolved = t.resolved_at.is_some() || t.reopen_count > 0;
            resolved += u64::from(ever_resolved);
            reopened += u64::from(t.reopen_count > 0);
            flagged += u64::from(!t.risk_flags.is_empty());
            if let Some(s) = t.satisfaction {
                scores.push(s);
                by_kind.entry(t.kind.as_str().to_owned()).or_insert_with(Vec::new).push(s);
                if let Some(c) = &t.category {
                    by_category.entry(c.clone()).or_insert_with(Vec::new).push(s);
                }
                if let Some(a) = &t.assignee {
                    by_agent.entry(a.to_string()).or_insert_with(Vec::new).push(s);
                }
            }
            let sla = eval.evaluate(&SlaClock::from(t))?;
            if let Some(s) = &sla {
                fr_sla.add(s.first_response.state);
                res_sla.add(s.resolution.state);
            }
            if t.status.is_open() {
                let b = backlog.entry(t.assignee.clone()).or_insert_with(|| Backlog {
                    assignee: t.assignee.clone(),
                    open: 0,
                    breached: 0,
                    at_risk: 0,
                });
                b.open += 1;
                b.breached += u64::from(sla.as_ref().is_some_and(|s| s.breached()));
                b.at_risk += u64::from(sla.as_ref().is_some_and(|s| s.at_risk()));
            }
        }
        Ok(ServiceReport {
            at,
            tickets: n,
            by_status: by_status.into_iter().collect(),
            volume: volume
                .into_iter()
                .map(|((period, kind, channel, priority), count)| VolumeRow { period, kind, channel, priority, count })
                .collect(),
            first_response: DurationStats::from_secs(fr),
            resolution: DurationStats::from_secs(res),
            first_response_sla: fr_sla.finish(),
            resolution_sla: res_sla.finish(),
            resolved,
            reopened,
            reopen_rate: ratio(reopened, resolved),
            csat: Csat::from_scores(scores),
            csat_by_kind: keyed(by_kind),
            csat_by_category: keyed(by_category),
            csat_by_agent: keyed(by_agent),
            backlog: backlog.into_values().collect(),
            flagged,
        })
    }
}
