//! The match settings document in Python: typed, frozen classes over
//! `guanxi::dedup::MatchRules` and its parts. Conversions only; every check is the core's
//! (`MatchRules.validate`), reported as one ValidationError naming each bad rule.

use guanxi::dedup as core;
use pyo3::prelude::*;
use rust_decimal::Decimal;

use crate::convert::{Problems, parse_name};
use crate::repr::q;

/// Parses a field's stable name (`surname`, `identifier.uscc`, `custom.date_of_birth`).
fn match_field(problems: &mut Problems, at: &str, name: &str) -> Option<core::MatchField> {
    match name.parse() {
        Ok(f) => Some(f),
        Err(reason) => {
            problems.push(at, reason);
            None
        }
    }
}

fn required<T>(problems: &mut Problems, at: &str, v: Option<T>) -> Option<T> {
    if v.is_none() {
        problems.push(at, guanxi::ValidationReason::Required);
    }
    v
}

const COMPARISONS: [&str; 8] = ["exact", "jaro_winkler", "edit", "q_gram", "token_set", "phonetic", "date", "number"];

fn comparison_name(c: &core::Comparison) -> &'static str {
    match c {
        core::Comparison::Exact => "exact",
        core::Comparison::JaroWinkler { .. } => "jaro_winkler",
        core::Comparison::Edit { .. } => "edit",
        core::Comparison::QGram { .. } => "q_gram",
        core::Comparison::TokenSet { .. } => "token_set",
        core::Comparison::Phonetic => "phonetic",
        core::Comparison::Date { .. } => "date",
        core::Comparison::Number { .. } => "number",
    }
}

/// One comparison of a field: `MatchRule("surname", "jaro_winkler", min=0.85)`.
///
/// `field`: `phone`, `email`, `name`, `given_name`, `surname`, `address`, `identifier`,
/// `identifier.<scheme>` (`cn_resident`, `uscc`, `passport`, `other`) or `custom.<key>`.
/// `comparison`: `exact`, `jaro_winkler`, `edit`, `q_gram`, `token_set`, `phonetic` (no
/// `min`), `date` (`min`), `number` (`tolerance`). `weight` counts with weighted scoring;
/// `only` ("enterprise" / "individual") limits the rule to pairs of that kind.
#[pyclass(module = "guanxi._guanxi", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct MatchRule(pub(crate) core::MatchRule);

#[pymethods]
impl MatchRule {
    #[new]
    #[pyo3(signature = (field, comparison, *, min = None, tolerance = None, weight = 1.0, only = None))]
    fn new(
        field: &str,
        comparison: &str,
        min: Option<f64>,
        tolerance: Option<Decimal>,
        weight: f64,
        only: Option<&str>,
    ) -> PyResult<Self> {
        let mut problems = Problems::default();
        let field = match_field(&mut problems, "field", field);
        let only = only.and_then(|k| problems.keep("only", parse_name::<guanxi::CustomerKind>("only", k)));
        let min_of = |problems: &mut Problems| required(problems, "min", min).unwrap_or(0.0);
        let comparison = match comparison {
            "exact" => Some(core::Comparison::Exact),
            "phonetic" => Some(core::Comparison::Phonetic),
            "jaro_winkler" => Some(core::Comparison::JaroWinkler { min: min_of(&mut problems) }),
            "edit" => Some(core::Comparison::Edit { min: min_of(&mut problems) }),
            "q_gram" => Some(core::Comparison::QGram { min: min_of(&mut problems) }),
            "token_set" => Some(core::Comparison::TokenSet { min: min_of(&mut problems) }),
            "date" => Some(core::Comparison::Date { min: min_of(&mut problems) }),
            "number" => {
                required(&mut problems, "tolerance", tolerance).map(|tolerance| core::Comparison::Number { tolerance })
            }
            other => {
                problems.push("comparison", guanxi::ValidationReason::not_allowed(other, COMPARISONS));
                None
            }
        };
        let (Some(field), Some(comparison)) = (field, comparison) else { return Err(problems.into_error()) };
        problems.result(MatchRule(core::MatchRule { field, comparison, weight, only }))
    }

    /// The field's stable name.
    #[getter]
    fn field(&self) -> String {
        self.0.field.to_string()
    }

    /// The comparison's name.
    #[getter]
    fn comparison(&self) -> &'static str {
        comparison_name(&self.0.comparison)
    }

    /// The least similarity that counts (None for `exact`, `phonetic` and `number`).
    #[getter]
    fn min(&self) -> Option<f64> {
        match self.0.comparison {
            core::Comparison::Exact | core::Comparison::Phonetic | core::Comparison::Number { .. } => None,
            ref c => Some(c.min()),
        }
    }

    /// The largest difference that counts (`number` only).
    #[getter]
    fn tolerance(&self) -> Option<Decimal> {
        match self.0.comparison {
            core::Comparison::Number { tolerance } => Some(tolerance),
            _ => None,
        }
    }

    /// The weight (weighted scoring).
    #[getter]
    fn weight(&self) -> f64 {
        self.0.weight
    }

    /// The kind of customer the rule is limited to.
    #[getter]
    fn only(&self) -> Option<&'static str> {
        self.0.only.map(|k| k.as_str())
    }

    fn __repr__(&self) -> String {
        let min = self.min().map(|m| format!(", min={m}")).unwrap_or_default();
        format!("MatchRule({}, {}{min})", q(&self.field()), q(self.comparison()))
    }
}

const BLOCKING_KINDS: [&str; 6] = ["exact", "deletions", "phonetic", "prefix", "q_grams", "sorted_neighbourhood"];

/// One blocking key: `BlockingKey("sorted_neighbourhood", "surname", window=9)`.
///
/// `kind`: `exact`, `deletions` (`max_len`), `phonetic`, `prefix` (`length`), `q_grams`
/// (`q`), `sorted_neighbourhood` (`window`); `field` as `MatchRule` takes it.
#[pyclass(module = "guanxi._guanxi", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct BlockingKey(pub(crate) core::BlockingKey);

#[pymethods]
impl BlockingKey {
    #[new]
    #[pyo3(signature = (kind, field, *, window = None, max_len = None, length = None, q = None))]
    fn new(
        kind: &str,
        field: &str,
        window: Option<u32>,
        max_len: Option<u32>,
        length: Option<u32>,
        q: Option<u32>,
    ) -> PyResult<Self> {
        let mut problems = Problems::default();
        let field = match_field(&mut problems, "field", field);
        let key = match kind {
            "exact" => field.map(|field| core::BlockingKey::Exact { field }),
            "phonetic" => field.map(|field| core::BlockingKey::Phonetic { field }),
            "deletions" => {
                let max_len = required(&mut problems, "max_len", max_len);
                field.zip(max_len).map(|(field, max_len)| core::BlockingKey::Deletions { field, max_len })
            }
            "prefix" => {
                let len = required(&mut problems, "length", length);
                field.zip(len).map(|(field, len)| core::BlockingKey::Prefix { field, len })
            }
            "q_grams" => {
                let q = required(&mut problems, "q", q);
                field.zip(q).map(|(field, q)| core::BlockingKey::QGrams { field, q })
            }
            "sorted_neighbourhood" => {
                let window = required(&mut problems, "window", window);
                field.zip(window).map(|(field, window)| core::BlockingKey::SortedNeighbourhood { field, window })
            }
            other => {
                problems.push("kind", guanxi::ValidationReason::not_allowed(other, BLOCKING_KINDS));
                None
            }
        };
        match key {
            Some(key) => problems.result(BlockingKey(key)),
            None => Err(problems.into_error()),
        }
    }

    /// The kind of key.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.0 {
            core::BlockingKey::Exact { .. } => "exact",
            core::BlockingKey::Deletions { .. } => "deletions",
            core::BlockingKey::Phonetic { .. } => "phonetic",
            core::BlockingKey::Prefix { .. } => "prefix",
            core::BlockingKey::QGrams { .. } => "q_grams",
            core::BlockingKey::SortedNeighbourhood { .. } => "sorted_neighbourhood",
        }
    }

    /// The field's stable name.
    #[getter]
    fn field(&self) -> String {
        self.0.field().to_string()
    }

    /// Records a sorted-neighbourhood window spans.
    #[getter]
    fn window(&self) -> Option<u32> {
        match self.0 {
            core::BlockingKey::SortedNeighbourhood { window, .. } => Some(window),
            _ => None,
        }
    }

    /// Leading characters deletions are taken from.
    #[getter]
    fn max_len(&self) -> Option<u32> {
        match self.0 {
            core::BlockingKey::Deletions { max_len, .. } => Some(max_len),
            _ => None,
        }
    }

    /// A prefix key's length in characters.
    #[getter]
    fn length(&self) -> Option<u32> {
        match self.0 {
            core::BlockingKey::Prefix { len, .. } => Some(len),
            _ => None,
        }
    }

    /// Characters per q-gram.
    #[getter]
    fn q(&self) -> Option<u32> {
        match self.0 {
            core::BlockingKey::QGrams { q, .. } => Some(q),
            _ => None,
        }
    }

    fn __repr__(&self) -> String {
        format!("BlockingKey({}, {})", q(self.kind()), q(&self.field()))
    }
}

/// One rule's Fellegi–Sunter probabilities: `m` (agrees for a true pair) and `u` (agrees for
/// a false pair).
#[pyclass(module = "guanxi._guanxi", frozen, eq, get_all, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct FieldProbabilities {
    m: f64,
    u: f64,
}

#[pymethods]
impl FieldProbabilities {
    #[new]
    fn new(m: f64, u: f64) -> Self {
        FieldProbabilities { m, u }
    }

    fn __repr__(&self) -> String {
        format!("FieldProbabilities(m={:.4}, u={:.4})", self.m, self.u)
    }
}

/// A Fellegi–Sunter model: the prior share of compared pairs that are one record, and m and u
/// per rule (in the rules' order).
#[pyclass(module = "guanxi._guanxi", frozen, eq, get_all, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct ProbabilisticModel {
    prior: f64,
    fields: Vec<FieldProbabilities>,
}

#[pymethods]
impl ProbabilisticModel {
    #[new]
    fn new(prior: f64, fields: Vec<FieldProbabilities>) -> Self {
        ProbabilisticModel { prior, fields }
    }

    fn __repr__(&self) -> String {
        format!("ProbabilisticModel(prior={:.4}, {} fields)", self.prior, self.fields.len())
    }
}

impl From<core::ProbabilisticModel> for ProbabilisticModel {
    fn from(m: core::ProbabilisticModel) -> Self {
        let fields = m.fields.into_iter().map(|f| FieldProbabilities { m: f.m, u: f.u }).collect();
        ProbabilisticModel { prior: m.prior, fields }
    }
}

impl From<&ProbabilisticModel> for core::ProbabilisticModel {
    fn from(m: &ProbabilisticModel) -> Self {
        let fields = m.fields.iter().map(|f| core::FieldProbabilities { m: f.m, u: f.u }).collect();
        core::ProbabilisticModel { prior: m.prior, fields }
    }
}

/// The match settings: rules, the threshold, the scoring (`"weighted"` or
/// `"probabilistic"`, with an optional estimated `model`), and blocking (keys combined by
/// union, and the block-size cap). `MatchRules.default()` suits Chinese B2B customers;
/// `MatchRules.people("date_of_birth")` suits hand-entered people.
#[pyclass(module = "guanxi._guanxi", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct MatchRules(pub(crate) core::MatchRules);

#[pymethods]
impl MatchRules {
    #[new]
    #[pyo3(signature = (rules, *, threshold = 0.8, scoring = "weighted", model = None, blocking = None, max_block = 100))]
    fn new(
        rules: Vec<MatchRule>,
        threshold: f64,
        scoring: &str,
        model: Option<ProbabilisticModel>,
        blocking: Option<Vec<BlockingKey>>,
        max_block: u32,
    ) -> PyResult<Self> {
        let mut problems = Problems::default();
        let scoring = match scoring {
            "weighted" => core::Scoring::Weighted,
            "probabilistic" => core::Scoring::Probabilistic { model: model.as_ref().map(Into::into) },
            other => {
                problems.push("scoring", guanxi::ValidationReason::not_allowed(other, ["weighted", "probabilistic"]));
                core::Scoring::Weighted
            }
        };
        let keys = match blocking {
            Some(keys) => keys.into_iter().map(|k| k.0).collect(),
            None => core::Blocking::default().keys,
        };
        let rules = core::MatchRules {
            rules: rules.into_iter().map(|r| r.0).collect(),
            threshold,
            scoring,
            blocking: core::Blocking { keys, max_block },
        };
        if let Err(guanxi::Error::Validation(errs)) = rules.validate() {
            for e in errs.iter() {
                problems.push(e.field.clone(), e.reason.clone());
            }
        }
        problems.result(MatchRules(rules))
    }

    /// The rules for Chinese B2B customers: same phone, e-mail or identifier, same or similar
    /// company name, similar address; weighted.
    #[staticmethod]
    fn default() -> Self {
        MatchRules(core::MatchRules::default())
    }

    /// The rules for people entered by hand, the date of birth in the custom date field
    /// `date_of_birth_field`: Fellegi–Sunter scored, m and u estimated from the data.
    #[staticmethod]
    #[pyo3(signature = (date_of_birth_field = "date_of_birth"))]
    fn people(date_of_birth_field: &str) -> Self {
        MatchRules(core::MatchRules::people(date_of_birth_field))
    }

    /// The rules.
    #[getter]
    fn rules(&self) -> Vec<MatchRule> {
        self.0.rules.iter().cloned().map(MatchRule).collect()
    }

    /// A pair scoring at least this is a likely duplicate.
    #[getter]
    fn threshold(&self) -> f64 {
        self.0.threshold
    }

    /// `"weighted"` or `"probabilistic"`.
    #[getter]
    fn scoring(&self) -> &'static str {
        match self.0.scoring {
            core::Scoring::Weighted => "weighted",
            core::Scoring::Probabilistic { .. } => "probabilistic",
        }
    }

    /// The probabilistic model, once estimated (`duplicates.train`) or given.
    #[getter]
    fn model(&self) -> Option<ProbabilisticModel> {
        match &self.0.scoring {
            core::Scoring::Probabilistic { model: Some(m) } => Some(m.clone().into()),
            _ => None,
        }
    }

    /// The blocking keys (a pair sharing any one is compared).
    #[getter]
    fn blocking(&self) -> Vec<BlockingKey> {
        self.0.blocking.keys.iter().cloned().map(BlockingKey).collect()
    }

    /// Blocks with more records are skipped, and counted.
    #[getter]
    fn max_block(&self) -> u32 {
        self.0.blocking.max_block
    }

    fn __repr__(&self) -> String {
        format!("MatchRules({} rules, {}, threshold={})", self.0.rules.len(), self.scoring(), self.0.threshold)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MatchRule>()?;
    m.add_class::<BlockingKey>()?;
    m.add_class::<FieldProbabilities>()?;
    m.add_class::<ProbabilisticModel>()?;
    m.add_class::<MatchRules>()?;
    Ok(())
}
