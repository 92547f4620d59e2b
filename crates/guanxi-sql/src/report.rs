//! The sales report's scan, shared by the backends: the narrow columns an opportunity row
//! carries for it (money in 1/10000 units, a summary of its completed stays and of its line
//! totals), the conditions that pick the rows, and the reduction of each row into the groups
//! of `SalesFacts`. The semantics equal `SalesFacts::from_records` (the conformance suite
//! checks them against each other on every backend).

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rustc_hash::FxHashMap;

use guanxi_core::sales::{
    ClosedGroup, ForecastGroup, KeyedAmount, LossGroup, MONEY_SCALE, OpenedGroup, Pipeline, ProductLine, SalesFacts,
    SalesQuery, StageHistoryEntry, StageKind, StayGroup, whole_seconds,
};
use guanxi_core::{Result, StorageError};

use crate::{Dialect, Params, SqlValue, ns, opportunity_where};

/// The columns a report scan reads, in [`FactRow`] order (table alias `o`).
pub const FACT_COLUMNS: &str = "o.stage, o.furthest_stage, o.opened_ns, o.closed_ns, o.won, o.opened_s, o.closed_s, \
    o.amount_e4, o.probability, o.expected_close, o.owner, o.stays, o.line_totals";

/// Money as an integer count of 1/10000 units (amounts are validated to fit).
///
/// ```
/// use rust_decimal::Decimal;
/// assert_eq!(guanxi_sql::report::e4(Decimal::new(12345, 2)).unwrap(), 1_234_500);
/// ```
pub fn e4(v: Decimal) -> Result<i64> {
    (v * Decimal::from(10_000))
        .trunc()
        .to_i64()
        .ok_or_else(|| StorageError::msg(format!("amount {v} does not fit the money column")).into())
}

/// The `line_totals` summary of product lines (see [`summary`]).
pub fn line_totals(lines: &[ProductLine]) -> Result<String> {
    let mut out = String::new();
    for l in lines {
        summary::push_record(&mut out, &[l.product_key(), &e4(l.total())?.to_string()]);
    }
    Ok(out)
}

/// The report columns of an opportunity row, derived from the record (what both backends
/// write beside it, and fill in for rows written before the columns existed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportColumns {
    /// Furthest stage reached.
    pub furthest_stage: String,
    /// Opened, in nanoseconds.
    pub opened_ns: i64,
    /// Opened, in seconds.
    pub opened_s: i64,
    /// Closed, in nanoseconds.
    pub closed_ns: Option<i64>,
    /// Closed, in seconds.
    pub closed_s: Option<i64>,
    /// Won (true), lost (false), open (none).
    pub won: Option<bool>,
    /// Amount in 1/10000 units.
    pub amount_e4: i64,
    /// Probability as normalized decimal text.
    pub probability: String,
    /// Expected close day (ISO).
    pub expected_close: Option<String>,
    /// The line totals summary.
    pub line_totals: String,
}

impl ReportColumns {
    /// The columns of `o`.
    pub fn of(o: &guanxi_core::sales::Opportunity) -> Result<ReportColumns> {
        let closed = o.closed_at();
        Ok(ReportColumns {
            furthest_stage: o.furthest_stage.clone(),
            opened_ns: ns(o.opened_at)?,
            opened_s: o.opened_at.timestamp(),
            closed_ns: closed.map(ns).transpose()?,
            closed_s: closed.map(|c| c.timestamp()),
            won: if o.won_at.is_some() { Some(true) } else { o.lost_at.map(|_| false) },
            amount_e4: e4(o.amount)?,
            probability: o.probability.normalize().to_string(),
            expected_close: o.expected_close.map(|d| d.to_string()),
            line_totals: line_totals(&o.lines)?,
        })
    }
}

/// The `stays` record a history entry appends to its opportunity's row: the stay it ended
/// (from, to, whole seconds, lost reason), or none for the first entry.
pub fn stay_record(h: &StageHistoryEntry) -> Option<String> {
    let (Some(from), Some(entered)) = (&h.change.from, h.from_entered_at) else { return None };
    let mut stay = String::new();
    let seconds = whole_seconds(entered, h.at).to_string();
    summary::push_record(&mut stay, &[from, &h.change.to, &seconds, h.lost_reason.as_deref().unwrap_or("")]);
    Some(stay)
}

/// The conditions on `opportunities o` a report over `q` in `currency` reads: the query's
/// filter, the currency, and (with a time range) only rows that can count in it. Rows closed
/// before or after the range and opened outside it are left out; open rows stay (their
/// expected close day is checked per row).
pub fn facts_where(d: Dialect, q: &SalesQuery, currency: &str, params: &mut dyn Params) -> Result<Vec<String>> {
    let mut conds = opportunity_where(d, &q.filter(), params);
    params.push(SqlValue::Text(currency.to_owned()));
    conds.push(format!("o.currency = {}", d.placeholder(params.len())));
    let (from, to) = (q.from.map(ns).transpose()?, q.to.map(ns).transpose()?);
    if from.is_some() || to.is_some() {
        let range = |col: &str, params: &mut dyn Params| {
            let mut c = vec![];
            if let Some(f) = from {
                params.push(SqlValue::Integer(f));
                c.push(format!("o.{col} >= {}", d.placeholder(params.len())));
            }
            if let Some(t) = to {
                params.push(SqlValue::Integer(t));
                c.push(format!("o.{col} < {}", d.placeholder(params.len())));
            }
            c.join(" AND ")
        };
        let opened = range("opened_ns", params);
        let closed = range("closed_ns", params);
        conds.push(format!("(o.closed_ns IS NULL OR ({opened}) OR ({closed}))"));
    }
    Ok(conds)
}

/// One row of a report scan ([`FACT_COLUMNS`]), its text as bytes.
#[derive(Debug, Clone, Copy)]
pub struct FactRow<'r> {
    /// Current stage.
    pub stage: &'r [u8],
    /// Furthest stage reached.
    pub furthest: &'r [u8],
    /// Opened, in nanoseconds.
    pub opened_ns: i64,
    /// Closed, in nanoseconds.
    pub closed_ns: Option<i64>,
    /// Won (true), lost (false), open (none).
    pub won: Option<bool>,
    /// Opened, in seconds.
    pub opened_s: i64,
    /// Closed, in seconds.
    pub closed_s: Option<i64>,
    /// Amount in 1/10000 units.
    pub amount_e4: i64,
    /// Probability as normalized decimal text.
    pub probability: &'r [u8],
    /// Expected close day (ISO).
    pub expected_close: Option<&'r [u8]>,
    /// Owner.
    pub owner: Option<&'r [u8]>,
    /// The stays summary.
    pub stays: &'r [u8],
    /// The line totals summary.
    pub line_totals: &'r [u8],
}

/// A report scan in progress: rows in, `SalesFacts` out.
pub struct FactsScan {
    acc: FactsAccumulator,
    from: Option<i64>,
    to: Option<i64>,
    from_day: Option<String>,
    to_day: Option<String>,
    lost: Vec<Vec<u8>>,
}

impl FactsScan {
    /// A scan for a report over `q` in pipeline `p`.
    pub fn new(p: &Pipeline, q: &SalesQuery) -> Result<FactsScan> {
        Ok(FactsScan {
            acc: FactsAccumulator::default(),
            from: q.from.map(ns).transpose()?,
            to: q.to.map(ns).transpose()?,
            from_day: q.from.map(|f| f.date_naive().to_string()),
            to_day: q.to.map(|t| t.date_naive().to_string()),
            lost: p.stages.iter().filter(|s| s.kind == StageKind::Lost).map(|s| s.key.as_bytes().to_vec()).collect(),
        })
    }

    fn in_range(&self, t: i64) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|e| t < e)
    }

    /// Adds one row: which ranges it counts in follows `SalesFacts::from_records` (opened in
    /// range: funnel, stays, losses; closed in range: win/loss and cycle; open with an
    /// expected close in range: the forecast).
    pub fn add(&mut self, r: &FactRow<'_>) -> Result<()> {
        let amount = r.amount_e4;
        if self.in_range(r.opened_ns) {
            self.acc.opened(r.stage, r.furthest, amount);
            for stay in summary::records(r.stays) {
                let [from, to, seconds, reason] = stay.fields()?;
                let lost_to = self.lost.iter().any(|l| *l == *summary::unescape(to));
                let reason = lost_to.then(|| summary::unescape(reason));
                self.acc.stay(&summary::unescape(from), summary::int(seconds)?, reason.as_deref());
            }
        }
        match r.closed_ns {
            Some(closed) if self.in_range(closed) => {
                let won = r.won.unwrap_or(false);
                let closed_s = r.closed_s.ok_or_else(|| summary::corrupt("closed_s"))?;
                self.acc.closed(won, (closed_s - r.opened_s).div_euclid(86_400), amount);
                if won {
                    self.acc.won_by_owner.at(r.owner.unwrap_or_default()).add(1, amount);
                    for line in summary::records(r.line_totals) {
                        let [product, total] = line.fields()?;
                        self.acc.won_by_product.at(&summary::unescape(product)).add(1, summary::int(total)?);
                    }
                }
            }
            Some(_) => {}
            None => {
                // ISO days compare as bytes.
                let day_in_range = |d: &[u8]| {
                    self.from_day.as_deref().is_none_or(|f| d >= f.as_bytes())
                        && self.to_day.as_deref().is_none_or(|e| d < e.as_bytes())
                };
                if r.expected_close.is_none_or(day_in_range) {
                    self.acc.open(r.expected_close.map(|d| d.get(..7).unwrap_or(d)), r.probability, amount);
                }
            }
        }
        Ok(())
    }

    /// The facts of every row added.
    pub fn finish(self) -> Result<SalesFacts> {
        self.acc.finish()
    }
}

/// Count and exact sum (in 1/10000 units) of a group.
#[derive(Default, Clone, Copy)]
struct Sum {
    count: u64,
    e4: i128,
}

impl Sum {
    fn add(&mut self, count: u64, e4: i64) {
        self.count += count;
        self.e4 += i128::from(e4);
    }

    fn amount(self) -> Result<Decimal> {
        Decimal::try_from_i128_with_scale(self.e4, MONEY_SCALE)
            .map(|d| d.normalize())
            .map_err(|_| StorageError::msg("a report sum overflows").into())
    }
}

/// Groups by text keys, looked up by borrowed bytes so existing groups cost no allocation.
struct Groups<V>(FxHashMap<Box<[u8]>, V>);

impl<V> Default for Groups<V> {
    fn default() -> Self {
        Groups(FxHashMap::default())
    }
}

impl<V: Default> Groups<V> {
    fn at(&mut self, key: &[u8]) -> &mut V {
        if !self.0.contains_key(key) {
            self.0.insert(key.into(), V::default());
        }
        self.0.get_mut(key).unwrap_or_else(|| unreachable!("inserted above"))
    }
}

impl<V> Groups<V> {
    /// The groups with their keys as text (checked once here, not per row).
    fn texts(self) -> Result<Vec<(String, V)>> {
        self.0
            .into_iter()
            .map(|(k, v)| Ok((String::from_utf8(k.into_vec()).map_err(|_| summary::corrupt("a text"))?, v)))
            .collect()
    }
}

/// Groups by two text keys.
type Groups2<V> = Groups<Groups<V>>;

impl<V> Groups2<V> {
    fn pairs(self) -> Result<Vec<(String, String, V)>> {
        let mut out = Vec::new();
        for (a, inner) in self.texts()? {
            out.extend(inner.texts()?.into_iter().map(|(b, v)| (a.clone(), b, v)));
        }
        Ok(out)
    }
}

/// The groups one report scan reduces into.
#[derive(Default)]
struct FactsAccumulator {
    opened: Groups2<Sum>,
    stays: Groups<(u64, i64)>,
    losses: Groups2<u64>,
    closed: FxHashMap<(bool, i64), Sum>,
    won_by_owner: Groups<Sum>,
    won_by_product: Groups<Sum>,
    /// By expected close month, then probability; `no_month` for none.
    by_month: Groups2<Sum>,
    no_month: Groups<Sum>,
}

impl FactsAccumulator {
    fn opened(&mut self, stage: &[u8], furthest: &[u8], amount: i64) {
        self.opened.at(stage).at(furthest).add(1, amount);
    }

    fn stay(&mut self, from: &[u8], seconds: i64, lost_reason: Option<&[u8]>) {
        let s = self.stays.at(from);
        s.0 += 1;
        s.1 += seconds;
        if let Some(reason) = lost_reason {
            *self.losses.at(from).at(reason) += 1;
        }
    }

    fn closed(&mut self, won: bool, days: i64, amount: i64) {
        self.closed.entry((won, days)).or_default().add(1, amount);
    }

    fn open(&mut self, month: Option<&[u8]>, probability: &[u8], amount: i64) {
        match month {
            Some(m) => self.by_month.at(m).at(probability),
            None => self.no_month.at(probability),
        }
        .add(1, amount);
    }

    fn finish(self) -> Result<SalesFacts> {
        let keyed = |g: Groups<Sum>| -> Result<Vec<KeyedAmount>> {
            g.texts()?
                .into_iter()
                .map(|(key, s)| Ok(KeyedAmount { key, count: s.count, amount: s.amount()? }))
                .collect()
        };
        let forecast = |month: Option<String>, probability: &str, s: Sum| -> Result<ForecastGroup> {
            Ok(ForecastGroup {
                month,
                probability: probability.parse().map_err(|_| summary::corrupt("probability"))?,
                count: s.count,
                amount: s.amount()?,
            })
        };
        let months = self.by_month.pairs()?.into_iter().map(|(m, p, s)| forecast(Some(m), &p, s));
        let no_month = self.no_month.texts()?.into_iter().map(|(p, s)| forecast(None, &p, s));
        let mut facts = SalesFacts {
            opened: (self.opened.pairs()?.into_iter())
                .map(|(stage, furthest, s)| Ok(OpenedGroup { stage, furthest, count: s.count, amount: s.amount()? }))
                .collect::<Result<_>>()?,
            stays: (self.stays.texts()?.into_iter())
                .map(|(stage, (count, seconds))| StayGroup { stage, count, seconds })
                .collect(),
            losses: (self.losses.pairs()?.into_iter())
                .map(|(stage, reason, count)| LossGroup { stage, reason, count })
                .collect(),
            closed: (self.closed.into_iter())
                .map(|((won, days), s)| Ok(ClosedGroup { won, days, count: s.count, amount: s.amount()? }))
                .collect::<Result<_>>()?,
            won_by_owner: keyed(self.won_by_owner)?,
            won_by_product: keyed(self.won_by_product)?,
            open_by_month: months.chain(no_month).collect::<Result<_>>()?,
        };
        facts.canonicalize();
        Ok(facts)
    }
}

/// What an opportunity's narrow row carries for the report (schema 4): `stays`, one record
/// per completed stay (from, to, whole seconds, lost reason), appended with each history
/// entry; `line_totals`, one record per line (product, total in 1/10000 units), rewritten
/// with the record. Records end in U+001E, fields are split by U+001F, and '%', U+001E and
/// U+001F inside a field are %-escaped, so any text round-trips.
pub mod summary {
    use std::borrow::Cow;

    use guanxi_core::{Error, Result, StorageError};

    const FIELD: char = '\u{1f}';
    const RECORD: char = '\u{1e}';

    /// Appends one record of `fields`.
    pub fn push_record(out: &mut String, fields: &[&str]) {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(FIELD);
            }
            if f.contains(['%', FIELD, RECORD]) {
                out.push_str(&f.replace('%', "%25").replace(RECORD, "%1E").replace(FIELD, "%1F"));
            } else {
                out.push_str(f);
            }
        }
        out.push(RECORD);
    }

    /// A field as written.
    pub fn unescape(f: &[u8]) -> Cow<'_, [u8]> {
        if f.contains(&b'%') {
            let s = String::from_utf8_lossy(f);
            Cow::Owned(s.replace("%1E", "\u{1e}").replace("%1F", "\u{1f}").replace("%25", "%").into_bytes())
        } else {
            Cow::Borrowed(f)
        }
    }

    /// An integer field.
    pub fn int(f: &[u8]) -> Result<i64> {
        let (negative, digits) = match f.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, f),
        };
        // Up to 18 digits cannot overflow: the scan's hot path skips UTF-8 checks and `parse`.
        if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
            return std::str::from_utf8(f).ok().and_then(|s| s.parse().ok()).ok_or_else(|| corrupt("a report summary"));
        }
        let v = digits.iter().fold(0i64, |v, d| v * 10 + i64::from(d - b'0'));
        Ok(if negative { -v } else { v })
    }

    /// One record's fields.
    pub struct Record<'a>(&'a [u8]);

    impl<'a> Record<'a> {
        /// Exactly `N` fields (still escaped), or a storage error.
        pub fn fields<const N: usize>(&self) -> Result<[&'a [u8]; N]> {
            let mut out: [&[u8]; N] = [&[]; N];
            let mut parts = self.0.split(|b| *b == FIELD as u8);
            for slot in &mut out {
                *slot = parts.next().ok_or_else(|| corrupt("a report summary"))?;
            }
            if parts.next().is_some() {
                return Err(corrupt("a report summary"));
            }
            Ok(out)
        }
    }

    /// The records of a column.
    pub fn records(column: &[u8]) -> impl Iterator<Item = Record<'_>> {
        column.split_inclusive(|b| *b == RECORD as u8).map(|r| Record(r.strip_suffix(&[RECORD as u8]).unwrap_or(r)))
    }

    /// The error of a summary that does not decode.
    pub fn corrupt(what: &str) -> Error {
        StorageError::msg(format!("{what} of an opportunity row does not decode")).into()
    }

    #[cfg(test)]
    mod tests {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn integers_round_trip(v in any::<i64>()) {
                prop_assert_eq!(int(v.to_string().as_bytes()).unwrap(), v);
            }

            #[test]
            fn any_text_round_trips(fields in proptest::collection::vec(".*|[%\u{1e}\u{1f}a]{0,6}", 1..4), n in 1usize..4) {
                let mut column = String::new();
                for _ in 0..n {
                    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
                    push_record(&mut column, &refs);
                }
                let decoded: Vec<Vec<String>> = records(column.as_bytes())
                    .map(|r| r.0.split(|b| *b == FIELD as u8).map(|f| String::from_utf8(unescape(f).into_owned()).unwrap()).collect())
                    .collect();
                prop_assert_eq!(decoded, vec![fields.clone(); n]);
            }
        }
    }
}
