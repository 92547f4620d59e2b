//! Business time: working hours per weekday, days off and make-up working days (调休), and the
//! arithmetic SLAs run on.
//!
//! [`BusinessCalendar`] is the data (it serializes as the service settings store it);
//! [`BusinessClock`] is its compiled form. The clock maps every instant to a count of business
//! seconds since a fixed origin ([`BusinessClock::seconds_at`]), so the business time between
//! two instants is a subtraction and a deadline is the inverse map: both O(log holidays).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ValidationErrors, ValidationReason};

/// A span of working time within a local day, e.g. 09:00–12:00.
///
/// ```
/// use guanxi_core::service::WorkingHours;
/// let morning = WorkingHours::new(9, 0, 12, 0);
/// assert_eq!(morning.seconds(), 3 * 3600);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingHours {
    /// Start (local time).
    pub start: NaiveTime,
    /// End (local time), after the start; 00:00 is not allowed (use 23:59:59).
    pub end: NaiveTime,
}

impl WorkingHours {
    /// A span from `h1:m1` to `h2:m2` (out-of-range values give 00:00, which validation refuses).
    pub fn new(h1: u32, m1: u32, h2: u32, m2: u32) -> WorkingHours {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN);
        WorkingHours { start: t(h1, m1), end: t(h2, m2) }
    }

    /// Its length in seconds (0 when malformed).
    pub fn seconds(&self) -> i64 {
        i64::from(self.end.num_seconds_from_midnight())
            .saturating_sub(i64::from(self.start.num_seconds_from_midnight()))
            .max(0)
    }
}

/// When a service desk works: hours per weekday in a fixed UTC offset, holidays, and make-up
/// working days. Holidays and make-up days are data: load each year's official list (e.g. the
/// State Council's notice of public holidays and 调休 days).
///
/// ```
/// use guanxi_core::service::BusinessCalendar;
/// let cal = BusinessCalendar::china_office();
/// assert_eq!(cal.utc_offset_minutes, 480);
/// assert_eq!(cal.weekly[0].len(), 2); // Monday: morning and afternoon
/// assert!(cal.weekly[6].is_empty()); // Sunday off
/// cal.validate()?;
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessCalendar {
    /// Local time as minutes east of UTC (480 for China). A fixed offset: zones with daylight
    /// saving need one calendar per season.
    pub utc_offset_minutes: i32,
    /// Working hours Monday (index 0) to Sunday (6), each day's spans in order, not overlapping.
    pub weekly: [Vec<WorkingHours>; 7],
    /// Days off whatever their weekday (public holidays).
    #[serde(default)]
    pub holidays: BTreeSet<NaiveDate>,
    /// Days worked whatever their weekday (make-up working days, 调休上班).
    #[serde(default)]
    pub working_days: BTreeSet<NaiveDate>,
    /// Hours of a make-up working day (empty: Monday's hours).
    #[serde(default)]
    pub working_day_hours: Vec<WorkingHours>,
}

impl Default for BusinessCalendar {
    fn default() -> Self {
        BusinessCalendar::china_office()
    }
}

impl BusinessCalendar {
    /// Monday to Friday 09:00–12:00 and 13:30–18:00 in UTC+8, no holidays yet.
    pub fn china_office() -> BusinessCalendar {
        let day = vec![WorkingHours::new(9, 0, 12, 0), WorkingHours::new(13, 30, 18, 0)];
        BusinessCalendar {
            utc_offset_minutes: 480,
            weekly: [day.clone(), day.clone(), day.clone(), day.clone(), day, vec![], vec![]],
            holidays: BTreeSet::new(),
            working_days: BTreeSet::new(),
            working_day_hours: Vec::new(),
        }
    }

    /// Every day, all day, in UTC: business time equals wall-clock time.
    ///
    /// ```
    /// use guanxi_core::service::{BusinessCalendar, BusinessClock};
    /// let clock = BusinessClock::new(&BusinessCalendar::around_the_clock())?;
    /// let t = chrono::DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")?.to_utc();
    /// assert_eq!(clock.add(t, 7200)?, t + chrono::Duration::hours(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn around_the_clock() -> BusinessCalendar {
        let all = vec![WorkingHours {
            start: NaiveTime::MIN,
            end: NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN),
        }];
        // 23:59:59 leaves one second a day out; the clock treats a span ending at 23:59:59 as
        // running to midnight so the day is whole.
        BusinessCalendar {
            utc_offset_minutes: 0,
            weekly: std::array::from_fn(|_| all.clone()),
            holidays: BTreeSet::new(),
            working_days: BTreeSet::new(),
            working_day_hours: Vec::new(),
        }
    }

    /// Checks the offset, the spans (in order, not overlapping, not empty) and that some
    /// working time exists in a normal week.
    pub fn validate(&self) -> Result<()> {
        let mut errs = ValidationErrors::default();
        if self.utc_offset_minutes.abs() > 18 * 60 {
            errs.push("utc_offset_minutes", ValidationReason::Invalid { detail: "must be within ±18 hours".into() });
        }
        let mut check = |field: String, spans: &[WorkingHours]| {
            let mut prev_end = None;
            for (i, s) in spans.iter().enumerate() {
                if s.end <= s.start {
                    errs.push(
                        format!("{field}[{i}]"),
                        ValidationReason::Invalid { detail: "ends before it starts".into() },
                    );
                } else if prev_end.is_some_and(|e| s.start < e) {
                    errs.push(
                        format!("{field}[{i}]"),
                        ValidationReason::Invalid { detail: "overlaps or precedes the span before it".into() },
                    );
                }
                prev_end = Some(s.end);
            }
        };
        for (d, spans) in self.weekly.iter().enumerate() {
            check(format!("weekly[{d}]"), spans);
        }
        check("working_day_hours".into(), &self.working_day_hours);
        if let Some(d) = self.holidays.intersection(&self.working_days).next() {
            errs.push("working_days", ValidationReason::Invalid { detail: format!("{d} is also a holiday") });
        }
        if self.weekly.iter().all(Vec::is_empty) {
            errs.push("weekly", ValidationReason::Invalid { detail: "has no working hours".into() });
        }
        errs.into_result(())
    }
}

/// Seconds of a local day covered by spans, as (start, end) pairs.
type Spans = Vec<(i64, i64)>;

const DAY: i64 = 86_400;

fn compile_spans(spans: &[WorkingHours]) -> Spans {
    spans
        .iter()
        .map(|s| {
            let end = i64::from(s.end.num_seconds_from_midnight());
            // A span ending at the last second of the day runs to midnight.
            (i64::from(s.start.num_seconds_from_midnight()), if end == DAY - 1 { DAY } else { end })
        })
        .collect()
}

fn total(spans: &Spans) -> i64 {
    spans.iter().map(|(s, e)| e - s).sum()
}

/// Business seconds of a day reached `sec` seconds after local midnight.
fn within(spans: &Spans, sec: i64) -> i64 {
    spans.iter().map(|&(s, e)| (sec.min(e) - s).max(0)).sum()
}

/// A day that differs from its weekday's pattern.
#[derive(Debug, Clone)]
struct Exception {
    /// Days since 1970-01-01 (local).
    day: i64,
    /// Its spans.
    spans: Spans,
    /// Sum of (exception total − weekday total) over the exceptions before this one.
    delta_before: i64,
}

/// A compiled [`BusinessCalendar`]: maps instants to business seconds and back.
///
/// Business time is counted in whole seconds: an instant inside a second counts from that
/// second's start.
///
/// ```
/// use guanxi_core::service::{BusinessCalendar, BusinessClock};
/// use chrono::{DateTime, Utc};
/// let clock = BusinessClock::new(&BusinessCalendar::china_office())?;
/// let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
/// // Friday 17:00 Beijing + 2 business hours = Monday 10:00.
/// let due = clock.add(at("2024-05-10T09:00:00Z"), 2 * 3600)?;
/// assert_eq!(due, at("2024-05-13T02:00:00Z"));
/// assert_eq!(clock.between(at("2024-05-10T09:00:00Z"), due), 2 * 3600);
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BusinessClock {
    offset: i64,
    weekly: [Spans; 7],
    /// Business seconds of Monday..Sunday, cumulative: `week_prefix[d]` = days before d.
    week_prefix: [i64; 8],
    exceptions: Vec<Exception>,
}

impl BusinessClock {
    /// Compiles a calendar (validating it first).
    pub fn new(cal: &BusinessCalendar) -> Result<BusinessClock> {
        cal.validate()?;
        let weekly: [Spans; 7] = std::array::from_fn(|d| compile_spans(&cal.weekly[d]));
        let mut week_prefix = [0; 8];
        for d in 0..7 {
            week_prefix[d + 1] = week_prefix[d] + total(&weekly[d]);
        }
        let make_up =
            compile_spans(if cal.working_day_hours.is_empty() { &cal.weekly[0] } else { &cal.working_day_hours });
        let mut days: Vec<(i64, Spans)> = cal
            .holidays
            .iter()
            .map(|d| (day_number(*d), Vec::new()))
            .chain(cal.working_days.iter().map(|d| (day_number(*d), make_up.clone())))
            .collect();
        days.sort_by_key(|(d, _)| *d);
        let mut delta = 0;
        let mut exceptions = Vec::with_capacity(days.len());
        for (day, spans) in days {
            let normal = total(&weekly[weekday(day)]);
            exceptions.push(Exception { day, delta_before: delta, spans });
            delta += total(&exceptions[exceptions.len() - 1].spans) - normal;
        }
        let clock = BusinessClock { offset: i64::from(cal.utc_offset_minutes) * 60, weekly, week_prefix, exceptions };
        if week_prefix[7] == 0 {
            return Err(Error::invalid("weekly", ValidationReason::Invalid { detail: "has no working hours".into() }));
        }
        Ok(clock)
    }

    fn spans(&self, day: i64) -> &Spans {
        match self.exceptions.binary_search_by_key(&day, |e| e.day) {
            Ok(i) => &self.exceptions[i].spans,
            Err(_) => &self.weekly[weekday(day)],
        }
    }

    /// Business seconds from the origin to the start of local day `day`.
    fn before_day(&self, day: i64) -> i64 {
        // Days counted from Monday 1969-12-29 (day −3).
        let d = day + 3;
        let base = d.div_euclid(7) * self.week_prefix[7] + self.week_prefix[d.rem_euclid(7) as usize];
        let i = self.exceptions.partition_point(|e| e.day < day);
        let correction = match self.exceptions.get(i) {
            Some(e) => e.delta_before,
            None => self
                .exceptions
                .last()
                .map_or(0, |e| e.delta_before + total(&e.spans) - total(&self.weekly[weekday(e.day)])),
        };
        base + correction
    }

    /// The local day of an instant in the calendar's offset.
    ///
    /// ```
    /// use guanxi_core::service::{BusinessCalendar, BusinessClock};
    /// let clock = BusinessClock::new(&BusinessCalendar::china_office())?;
    /// let t = "2024-05-06T17:00:00Z".parse().unwrap(); // 01:00 on the 7th in Beijing
    /// assert_eq!(clock.local_date(t).to_string(), "2024-05-07");
    /// # Ok::<(), guanxi_core::Error>(())
    /// ```
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        (t + chrono::Duration::seconds(self.offset)).date_naive()
    }

    /// Business seconds from a fixed origin to `t`. Only differences are meaningful: the business
    /// time between `a` and `b` is `seconds_at(b) - seconds_at(a)`.
    pub fn seconds_at(&self, t: DateTime<Utc>) -> i64 {
        let local = t.timestamp() + self.offset;
        let (day, sec) = (local.div_euclid(DAY), local.rem_euclid(DAY));
        self.before_day(day) + within(self.spans(day), sec)
    }

    /// Business seconds between two instants (negative when `b` is before `a`).
    pub fn between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
        self.seconds_at(b) - self.seconds_at(a)
    }

    /// The earliest instant whose business-seconds count is `x`: the inverse of
    /// [`seconds_at`](BusinessClock::seconds_at), landing at the end of the working second.
    pub fn instant_at(&self, x: i64, hint: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let hint_day = (hint.timestamp() + self.offset).div_euclid(DAY);
        // Find the first day d with before_day(d + 1) >= x: walk a week, then gallop.
        let reached = |d: i64| self.before_day(d + 1) >= x;
        let gallop_limit = 1i64 << 30;
        let (mut lo, mut hi) = if reached(hint_day) {
            let (mut step, mut hi) = (1, hint_day);
            loop {
                let lo = hint_day - step;
                if !reached(lo) {
                    break (lo, hi);
                }
                hi = lo;
                step *= 2;
                if step > gallop_limit {
                    return Err(out_of_range());
                }
            }
        } else {
            let (mut step, mut lo) = (1, hint_day);
            loop {
                let hi = hint_day + step;
                if reached(hi) {
                    break (lo, hi);
                }
                lo = hi;
                step *= 2;
                if step > gallop_limit {
                    return Err(out_of_range());
                }
            }
        };
        // Invariant: !reached(lo), reached(hi).
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if reached(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let day = hi;
        let mut left = x - self.before_day(day);
        let mut sec = 0;
        for &(s, e) in self.spans(day) {
            if left <= e - s {
                sec = s + left;
                break;
            }
            left -= e - s;
        }
        DateTime::from_timestamp(day * DAY + sec - self.offset, 0).ok_or_else(out_of_range)
    }

    /// The instant `seconds` of business time after `start` (the earliest such instant).
    pub fn add(&self, start: DateTime<Utc>, seconds: i64) -> Result<DateTime<Utc>> {
        self.instant_at(self.seconds_at(start) + seconds, start)
    }
}

fn out_of_range() -> Error {
    Error::invalid("at", ValidationReason::Invalid { detail: "business time runs outside the supported years".into() })
}

/// Days since 1970-01-01.
fn day_number(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce()) - 719_163
}

/// Monday = 0 for a day number (1970-01-01 was a Thursday).
fn weekday(day: i64) -> usize {
    (day + 3).rem_euclid(7) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn may_day_2024() -> BusinessCalendar {
        // 2024 Labour Day: 5/1–5/5 off, 4/28 (Sunday) and 5/11 (Saturday) worked.
        let d = |m, day| NaiveDate::from_ymd_opt(2024, m, day).unwrap();
        let mut cal = BusinessCalendar::china_office();
        cal.holidays = (1..=5).map(|x| d(5, x)).collect();
        cal.working_days = [d(4, 28), d(5, 11)].into();
        cal
    }

    #[test]
    fn weekday_numbering_matches_chrono() {
        for n in -800..800 {
            let date = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(n);
            assert_eq!(weekday(day_number(date)), date.weekday().num_days_from_monday() as usize);
        }
    }

    #[test]
    fn holidays_and_make_up_days() {
        let clock = BusinessClock::new(&may_day_2024()).unwrap();
        // Tuesday 4/30 17:00 Beijing + 2h: 1h on 4/30, the holiday week skipped, 5/6 10:00.
        assert_eq!(clock.add(at("2024-04-30T09:00:00Z"), 7200).unwrap(), at("2024-05-06T02:00:00Z"));
        // Saturday 5/11 is worked: Friday 5/10 17:00 + 2h = Saturday 10:00.
        assert_eq!(clock.add(at("2024-05-10T09:00:00Z"), 7200).unwrap(), at("2024-05-11T02:00:00Z"));
        // Sunday 4/28 is worked: 7.5 hours.
        assert_eq!(clock.between(at("2024-04-27T16:00:00Z"), at("2024-04-28T16:00:00Z")), 27_000);
        // The lunch break does not count; a deadline at the end of the morning stays at 12:00.
        assert_eq!(clock.add(at("2024-05-06T01:00:00Z"), 3 * 3600).unwrap(), at("2024-05-06T04:00:00Z"));
        assert_eq!(clock.add(at("2024-05-06T01:00:00Z"), 3 * 3600 + 1).unwrap(), at("2024-05-06T05:30:01Z"));
    }

    #[test]
    fn bad_calendars_name_the_field() {
        let mut cal = BusinessCalendar::china_office();
        cal.weekly[2] = vec![WorkingHours::new(13, 0, 12, 0)];
        cal.weekly[3] = vec![WorkingHours::new(9, 0, 12, 0), WorkingHours::new(11, 0, 13, 0)];
        let Err(Error::Validation(v)) = BusinessClock::new(&cal) else { panic!("expected validation") };
        assert!(v.field("weekly[2][0]").is_some() && v.field("weekly[3][1]").is_some());
        let mut none = BusinessCalendar::china_office();
        none.weekly = Default::default();
        assert!(BusinessClock::new(&none).is_err());
    }

    fn calendar() -> impl Strategy<Value = BusinessCalendar> {
        let span = (0u32..22, 0u32..60, 1u32..4).prop_map(|(h, m, len)| WorkingHours::new(h, m, (h + len).min(23), m));
        let day = proptest::collection::vec(span, 0..3).prop_map(|mut v| {
            v.sort_by_key(|s| s.start);
            let mut out: Vec<WorkingHours> = Vec::new();
            for s in v {
                if out.last().is_none_or(|p| s.start >= p.end) && s.end > s.start {
                    out.push(s);
                }
            }
            out
        });
        let days = proptest::collection::btree_set(0i64..120, 0..20);
        (proptest::array::uniform7(day), days, -720i32..840, 0usize..20).prop_filter_map(
            "some working time",
            |(weekly, special, offset, split)| {
                if weekly.iter().all(Vec::is_empty) {
                    return None;
                }
                let base = NaiveDate::from_ymd_opt(2024, 1, 1)?;
                let dates: Vec<NaiveDate> = special.iter().map(|d| base + chrono::Duration::days(*d)).collect();
                let (h, w) = dates.split_at(split.min(dates.len()));
                Some(BusinessCalendar {
                    utc_offset_minutes: offset,
                    weekly,
                    holidays: h.iter().copied().collect(),
                    working_days: w.iter().copied().collect(),
                    working_day_hours: vec![],
                })
            },
        )
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        // Late 2023 to mid 2024, around the special days.
        (1_698_000_000i64..1_720_000_000).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
    }

    proptest! {
        #[test]
        fn deadline_is_exactly_the_target_away(cal in calendar(), start in instant(), target in 0i64..400_000) {
            let clock = BusinessClock::new(&cal).unwrap();
            let due = clock.add(start, target).unwrap();
            prop_assert!(due >= start);
            prop_assert_eq!(clock.between(start, due), target);
            // Earliest: one second before, the target is not yet reached.
            if target > 0 {
                prop_assert!(clock.between(start, due - chrono::Duration::seconds(1)) < target);
            }
        }

        #[test]
        fn business_time_is_monotonic_and_additive(cal in calendar(), a in instant(), b in instant(), c in instant()) {
            let clock = BusinessClock::new(&cal).unwrap();
            let mut v = [a, b, c];
            v.sort();
            let [a, b, c] = v;
            prop_assert!(clock.between(a, b) >= 0);
            prop_assert!(clock.between(a, b) <= (b - a).num_seconds());
            prop_assert_eq!(clock.between(a, b) + clock.between(b, c), clock.between(a, c));
        }

        #[test]
        fn seconds_match_a_day_by_day_count(cal in calendar(), a in instant(), days in 0i64..30) {
            // Independent reference: sum each local day's spans for the days in between.
            let clock = BusinessClock::new(&cal).unwrap();
            let off = i64::from(cal.utc_offset_minutes) * 60;
            let local_midnight = (a.timestamp() + off).div_euclid(DAY) * DAY - off;
            let a0 = DateTime::from_timestamp(local_midnight, 0).unwrap();
            let b0 = a0 + chrono::Duration::days(days);
            let mut expected = 0;
            for k in 0..days {
                let date = (a0 + chrono::Duration::seconds(off) + chrono::Duration::days(k)).date_naive();
                let spans = if cal.holidays.contains(&date) {
                    vec![]
                } else if cal.working_days.contains(&date) {
                    cal.weekly[0].clone()
                } else {
                    cal.weekly[date.weekday().num_days_from_monday() as usize].clone()
                };
                expected += total(&compile_spans(&spans));
            }
            prop_assert_eq!(clock.between(a0, b0), expected);
        }
    }
}
