//! Lifetime value: the BG/NBD model of repeat purchases (Fader, Hardie & Lee 2005, "Counting
//! your customers the easy way") and the Gamma-Gamma model of spend per purchase (Fader,
//! Hardie & Lee 2005, note 025), fitted by maximum likelihood, with the predictions the
//! Python `lifetimes` package makes — the tests compare both on the same data.
//!
//! The likelihoods are written for stability: `ln Γ` differences and digammas are computed
//! once per distinct purchase count (not once per customer), BG/NBD's two-branch term as a
//! softplus, and the parameters fitted as logarithms (so they stay positive) by L-BFGS over
//! analytic gradients. Instants and amounts are plain `f64` here: these are statistical
//! estimates; the facade rounds money it reports to a `Decimal`.

use std::collections::HashMap;

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use statrs::function::gamma::{digamma, ln_gamma};

use crate::error::{Error, Result, ValidationErrors, ValidationReason};

/// One customer's purchase history as the models read it (the "RFM summary" of `lifetimes`),
/// in one time unit (days, weeks…) throughout.
///
/// ```
/// use guanxi_core::analytics::PurchaseHistory;
/// // First bought on day 0, again on days 10 and 30, observed until day 40.
/// let h = PurchaseHistory::new(2, 30.0, 40.0).monetary(150.0);
/// assert_eq!((h.frequency, h.recency, h.age), (2, 30.0, 40.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PurchaseHistory {
    /// Repeat purchases: purchases after the first (distinct periods, as `lifetimes` counts).
    pub frequency: u32,
    /// Time from the first purchase to the last (0 without repeats).
    pub recency: f64,
    /// Time from the first purchase to the end of observation (`T`).
    pub age: f64,
    /// Mean value of the repeat purchases (0 without repeats).
    pub monetary: f64,
}

impl PurchaseHistory {
    /// A history without a monetary value.
    pub fn new(frequency: u32, recency: f64, age: f64) -> PurchaseHistory {
        PurchaseHistory { frequency, recency, age, monetary: 0.0 }
    }

    /// Sets the mean value of the repeat purchases.
    pub fn monetary(mut self, value: f64) -> PurchaseHistory {
        self.monetary = value;
        self
    }
}

/// Checks histories as `lifetimes` does: finite, `0 ≤ recency ≤ age`, recency 0 without
/// repeats; with `monetary`, repeat buyers' values positive. Every bad one named together.
fn check(data: &[PurchaseHistory], monetary: bool) -> Result<()> {
    let mut errs = ValidationErrors::default();
    if data.is_empty() {
        errs.push("histories", ValidationReason::Required);
    }
    for (i, h) in data.iter().enumerate() {
        let bad = |detail: &str| ValidationReason::Invalid { detail: detail.to_owned() };
        if !h.age.is_finite() || h.age <= 0.0 {
            errs.push(format!("histories[{i}].age"), bad("must be a positive number"));
        }
        if !h.recency.is_finite() || h.recency < 0.0 || h.recency > h.age {
            errs.push(format!("histories[{i}].recency"), bad("must be from 0 to the age"));
        } else if h.frequency == 0 && h.recency != 0.0 {
            errs.push(format!("histories[{i}].recency"), bad("must be 0 without repeat purchases"));
        }
        if monetary && h.frequency > 0 && (!h.monetary.is_finite() || h.monetary <= 0.0) {
            errs.push(format!("histories[{i}].monetary"), bad("must be positive for a repeat buyer"));
        }
    }
    errs.into_result(())
}

/// The log-parameters are held within ±this (parameters within e^±25): data whose likelihood
/// has no finite maximum (every customer buying like clockwork) meets a flat wall instead of
/// overflowing, and the fit ends there.
const LOG_BOUND: f64 = 25.0;

/// At most this many evaluations of a likelihood in one fit.
const MAX_EVALUATIONS: usize = 20_000;

/// A likelihood with a budget of evaluations: past it, the solver is stopped with an error.
struct Budgeted<P> {
    problem: P,
    left: std::sync::atomic::AtomicUsize,
}

impl<P> Budgeted<P> {
    fn spend(&self) -> std::result::Result<(), argmin::core::Error> {
        use std::sync::atomic::Ordering;
        if self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_err() {
            return Err(argmin::core::Error::msg(format!("no convergence within {MAX_EVALUATIONS} evaluations")));
        }
        Ok(())
    }
}

impl<P: CostFunction<Param = Vec<f64>, Output = f64>> CostFunction for Budgeted<P> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        self.spend()?;
        self.problem.cost(p)
    }
}

impl<P: Gradient<Param = Vec<f64>, Gradient = Vec<f64>>> Gradient for Budgeted<P> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        self.spend()?;
        self.problem.gradient(p)
    }
}

/// A fitted model with the mean log-likelihood it reached and the solver's iterations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fitted<M> {
    /// The parameters.
    pub model: M,
    /// Mean log-likelihood per customer at the parameters.
    pub log_likelihood: f64,
    /// L-BFGS iterations.
    pub iterations: u64,
}

/// Minimizes `problem` from `start` (log-parameters) with L-BFGS; the best log-parameters,
/// the cost there and the iterations.
fn minimize<P>(problem: P, start: Vec<f64>) -> Result<(Vec<f64>, f64, u64)>
where
    P: CostFunction<Param = Vec<f64>, Output = f64> + Gradient<Param = Vec<f64>, Gradient = Vec<f64>>,
{
    let failed = |e: argmin::core::Error| Error::InvalidState(format!("the model did not converge: {e}"));
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(1e-10)
        .map_err(failed)?
        .with_tolerance_cost(1e-14)
        .map_err(failed)?;
    let budgeted = Budgeted { problem, left: std::sync::atomic::AtomicUsize::new(MAX_EVALUATIONS) };
    let res = Executor::new(budgeted, solver).configure(|s| s.param(start).max_iters(500)).run().map_err(failed)?;
    let state = res.state();
    let best = state.get_best_param().cloned().ok_or_else(|| Error::InvalidState("no parameters".into()))?;
    if best.iter().any(|v| !v.is_finite()) || !state.get_best_cost().is_finite() {
        return Err(Error::InvalidState("the model did not converge to finite parameters".into()));
    }
    Ok((best, state.get_best_cost(), state.get_iter()))
}

/// The BG/NBD model: purchase rates are Gamma(r, α) across customers, the chance of leaving
/// after each purchase Beta(a, b).
///
/// ```
/// use guanxi_core::analytics::{BgNbd, PurchaseHistory};
/// // The CDNOW parameters (weeks) of Fader, Hardie & Lee.
/// let m = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
/// let h = PurchaseHistory::new(2, 30.43, 38.86);
/// assert!((m.probability_alive(&h) - 0.7266).abs() < 1e-3);
/// assert!((m.expected_purchases(39.0, &h) - 1.2259).abs() < 1e-3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct BgNbd {
    /// Shape of the purchase rates' Gamma.
    pub r: f64,
    /// Rate (scale⁻¹) of the purchase rates' Gamma, in the histories' time unit.
    pub alpha: f64,
    /// Beta's first shape (leaving).
    pub a: f64,
    /// Beta's second shape (staying).
    pub b: f64,
}

/// The BG/NBD likelihood over histories grouped by purchase count, in a scaled time unit.
struct BgNbdProblem {
    /// Distinct purchase counts.
    counts: Vec<u32>,
    /// Per customer: its count's index, recency and age (scaled).
    rows: Vec<(usize, f64, f64)>,
}

impl BgNbdProblem {
    /// Mean negative log-likelihood and its gradient in the log-parameters.
    fn evaluate(&self, log_params: &[f64]) -> (f64, Vec<f64>) {
        let [r, alpha, a, b] = [0, 1, 2, 3].map(|i| log_params[i].clamp(-LOG_BOUND, LOG_BOUND).exp());
        // Per distinct count: the ln Γ differences and digamma differences.
        let per_count: Vec<[f64; 6]> = self
            .counts
            .iter()
            .map(|&x| {
                let x = f64::from(x);
                [
                    ln_gamma(r + x) - ln_gamma(r),
                    ln_gamma(b + x) - ln_gamma(b),
                    ln_gamma(a + b) - ln_gamma(a + b + x),
                    digamma(r + x) - digamma(r),
                    digamma(b + x) - digamma(b),
                    digamma(a + b + x) - digamma(a + b),
                ]
            })
            .collect();
        let ln_alpha = alpha.ln();
        let (ln_a, mut ll) = (a.ln(), 0.0);
        let (mut gr, mut galpha, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0);
        for &(k, t_x, t) in &self.rows {
            let x = f64::from(self.counts[k]);
            let [gl_r, gl_b, gl_ab, d_r, d_b, d_ab] = per_count[k];
            let ln_at = (alpha + t).ln();
            let mut row = gl_r + r * ln_alpha + gl_b + gl_ab - (r + x) * ln_at;
            gr += d_r + ln_alpha - ln_at;
            galpha += r / alpha - (r + x) / (alpha + t);
            ga -= d_ab;
            gb += d_b - d_ab;
            if x > 0.0 {
                // ln(e^A3 + e^A4) = A3 + softplus(A4 − A3).
                let ln_atx = (alpha + t_x).ln();
                let d = ln_a - (b + x - 1.0).ln() + (r + x) * (ln_at - ln_atx);
                row += d.max(0.0) + (-d.abs()).exp().ln_1p();
                let p = if d >= 0.0 { 1.0 / (1.0 + (-d).exp()) } else { d.exp() / (1.0 + d.exp()) };
                gr += p * (ln_at - ln_atx);
                galpha += p * (r + x) * (1.0 / (alpha + t) - 1.0 / (alpha + t_x));
                ga += p / a;
                gb -= p / (b + x - 1.0);
            }
            ll += row;
        }
        let n = self.rows.len() as f64;
        (-ll / n, vec![-gr * r / n, -galpha * alpha / n, -ga * a / n, -gb * b / n])
    }
}

impl CostFunction for BgNbdProblem {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.evaluate(p).0)
    }
}

impl Gradient for BgNbdProblem {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(self.evaluate(p).1)
    }
}

/// Histories grouped by count: the distinct counts and each row's index among them.
fn by_count(
    data: &[PurchaseHistory],
    keep: impl Fn(&PurchaseHistory) -> bool,
) -> (Vec<u32>, Vec<(usize, &PurchaseHistory)>) {
    let mut index: HashMap<u32, usize> = HashMap::new();
    let mut counts = Vec::new();
    let mut rows = Vec::new();
    for h in data.iter().filter(|h| keep(h)) {
        let k = *index.entry(h.frequency).or_insert_with(|| {
            counts.push(h.frequency);
            counts.len() - 1
        });
        rows.push((k, h));
    }
    (counts, rows)
}

/// The Gauss hypergeometric ₂F₁(a, b; c; z) for 0 ≤ z < 1, by its series (Euler's
/// transformation when the series overflows), as `ln`.
fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    fn series(a: f64, b: f64, c: f64, z: f64) -> f64 {
        let (mut term, mut sum) = (1.0f64, 1.0f64);
        for n in 0..1_000_000u32 {
            let n = f64::from(n);
            term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
            sum += term;
            if !sum.is_finite() || term.abs() <= sum.abs() * 1e-17 {
                break;
            }
        }
        sum
    }
    let direct = series(a, b, c, z).ln();
    if direct.is_finite() { direct } else { series(c - a, c - b, c, z).ln() + (c - a - b) * (1.0 - z).ln() }
}

impl BgNbd {
    /// Fits the model by maximum likelihood (L-BFGS over the log-parameters, from where
    /// `lifetimes` starts, time rescaled to a maximum age of 1 as it does, so the reported
    /// log-likelihood is its too); histories are
    /// checked first, every bad one named.
    ///
    /// ```
    /// use guanxi_core::analytics::{BgNbd, PurchaseHistory};
    /// let data: Vec<_> = (0..200u32)
    ///     .map(|i| {
    ///         let x = i % 5;
    ///         PurchaseHistory::new(x, if x == 0 { 0.0 } else { f64::from(10 + i % 20) }, 40.0)
    ///     })
    ///     .collect();
    /// let fit = BgNbd::fit(&data)?;
    /// assert!(fit.model.r > 0.0 && fit.model.alpha > 0.0 && fit.log_likelihood < 0.0);
    /// # Ok::<(), guanxi_core::Error>(())
    /// ```
    pub fn fit(data: &[PurchaseHistory]) -> Result<Fitted<BgNbd>> {
        check(data, false)?;
        let scale = 1.0 / data.iter().map(|h| h.age).fold(0.0, f64::max);
        let (counts, rows) = by_count(data, |_| true);
        let rows = rows.into_iter().map(|(k, h)| (k, h.recency * scale, h.age * scale)).collect();
        let (p, cost, iterations) = minimize(BgNbdProblem { counts, rows }, vec![0.1; 4])?;
        let [r, alpha, a, b] = [0, 1, 2, 3].map(|i| p[i].exp());
        Ok(Fitted { model: BgNbd { r, alpha: alpha / scale, a, b }, log_likelihood: -cost, iterations })
    }

    /// The probability that a customer with this history is still a customer (1 without
    /// repeat purchases, as the model has it).
    pub fn probability_alive(&self, h: &PurchaseHistory) -> f64 {
        if h.frequency == 0 {
            return 1.0;
        }
        let x = f64::from(h.frequency);
        let log_div =
            (self.r + x) * ((self.alpha + h.age) / (self.alpha + h.recency)).ln() + (self.a / (self.b + x - 1.0)).ln();
        1.0 / (1.0 + log_div.exp())
    }

    /// The probability that the customer has left: 1 − P(alive).
    pub fn churn_probability(&self, h: &PurchaseHistory) -> f64 {
        1.0 - self.probability_alive(h)
    }

    /// The purchases a customer with this history is expected to make in the next `t` time
    /// units.
    pub fn expected_purchases(&self, t: f64, h: &PurchaseHistory) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let (x, t_x, age) = (f64::from(h.frequency), h.recency, h.age);
        let ln_hyp = ln_hyp2f1(r + x, b + x, a + b + x - 1.0, t / (alpha + age + t));
        let first = (a + b + x - 1.0) / (a - 1.0);
        let second = 1.0 - (ln_hyp + (r + x) * ((alpha + age) / (alpha + t + age)).ln()).exp();
        let repeat = if h.frequency > 0 { 1.0 } else { 0.0 };
        let denominator = 1.0 + repeat * (a / (b + x - 1.0)) * ((alpha + age) / (alpha + t_x)).powf(r + x);
        first * second / denominator
    }
}

/// The Gamma-Gamma model of spend per purchase: a customer's purchase values are Gamma(p, ν),
/// ν is Gamma(q, γ) across customers (`v` is γ, as `lifetimes` names it).
///
/// ```
/// use guanxi_core::analytics::GammaGamma;
/// let m = GammaGamma { p: 6.25, q: 3.74, v: 15.44 };
/// // Two repeat purchases of 30 on average: pulled towards the population's mean.
/// let e = m.expected_average_value(2, 30.0);
/// assert!(e > 30.0 && e < m.p * m.v / (m.q - 1.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GammaGamma {
    /// Shape of a customer's purchase values.
    pub p: f64,
    /// Shape of the values' rate across customers.
    pub q: f64,
    /// Rate of the values' rate across customers.
    pub v: f64,
}

struct GammaGammaProblem {
    counts: Vec<u32>,
    /// Per repeat buyer: its count's index, its mean value and the log of it.
    rows: Vec<(usize, f64, f64)>,
}

impl GammaGammaProblem {
    fn evaluate(&self, log_params: &[f64]) -> (f64, Vec<f64>) {
        let [p, q, v] = [0, 1, 2].map(|i| log_params[i].clamp(-LOG_BOUND, LOG_BOUND).exp());
        let per_count: Vec<[f64; 4]> = self
            .counts
            .iter()
            .map(|&x| {
                let px = p * f64::from(x);
                [ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q), digamma(px + q), digamma(px), digamma(q)]
            })
            .collect();
        let ln_v = v.ln();
        let (mut ll, mut gp, mut gq, mut gv) = (0.0, 0.0, 0.0, 0.0);
        for &(k, m, ln_m) in &self.rows {
            let x = f64::from(self.counts[k]);
            let [gl, d_pxq, d_px, d_q] = per_count[k];
            let px = p * x;
            let ln_xmv = (x * m + v).ln();
            ll += gl + q * ln_v + (px - 1.0) * ln_m + px * x.ln() - (px + q) * ln_xmv;
            gp += x * (d_pxq - d_px + ln_m + x.ln() - ln_xmv);
            gq += d_pxq - d_q + ln_v - ln_xmv;
            gv += q / v - (px + q) / (x * m + v);
        }
        let n = self.rows.len() as f64;
        (-ll / n, vec![-gp * p / n, -gq * q / n, -gv * v / n])
    }
}

impl CostFunction for GammaGammaProblem {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.evaluate(p).0)
    }
}

impl Gradient for GammaGammaProblem {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(self.evaluate(p).1)
    }
}

impl GammaGamma {
    /// Fits the model by maximum likelihood over the repeat buyers among `data` (customers
    /// without repeat purchases carry no spend information, as in `lifetimes`).
    ///
    /// ```
    /// use guanxi_core::analytics::{GammaGamma, PurchaseHistory};
    /// let data: Vec<_> = (1..300u32)
    ///     .map(|i| PurchaseHistory::new(1 + i % 4, 20.0, 40.0).monetary(20.0 + f64::from(i % 17) * 3.0))
    ///     .collect();
    /// let fit = GammaGamma::fit(&data)?;
    /// assert!(fit.model.q > 1.0);
    /// # Ok::<(), guanxi_core::Error>(())
    /// ```
    pub fn fit(data: &[PurchaseHistory]) -> Result<Fitted<GammaGamma>> {
        check(data, true)?;
        let (counts, rows) = by_count(data, |h| h.frequency > 0);
        if rows.is_empty() {
            return Err(Error::invalid(
                "histories",
                ValidationReason::Invalid { detail: "no customer bought more than once".into() },
            ));
        }
        let rows = rows.into_iter().map(|(k, h)| (k, h.monetary, h.monetary.ln())).collect();
        let (p, cost, iterations) = minimize(GammaGammaProblem { counts, rows }, vec![0.1; 3])?;
        let [p, q, v] = [0, 1, 2].map(|i| p[i].exp());
        Ok(Fitted { model: GammaGamma { p, q, v }, log_likelihood: -cost, iterations })
    }

    /// The expected value of a customer's purchases given `frequency` repeat purchases of
    /// `monetary` on average: a weighted mean of theirs and the population's.
    pub fn expected_average_value(&self, frequency: u32, monetary: f64) -> f64 {
        let GammaGamma { p, q, v } = *self;
        let x = f64::from(frequency);
        let individual = p * x / (p * x + q - 1.0);
        let population = v * p / (q - 1.0);
        (1.0 - individual) * population + individual * monetary
    }
}

/// Lifetime value over `months` months, discounted at `monthly_discount` a month: each month's
/// expected purchases (BG/NBD) times the expected value of one (Gamma-Gamma), as `lifetimes`'
/// `customer_lifetime_value` computes it. `units_per_month` converts the histories' time unit
/// (30 for days, 4.345 for weeks, 1 for months).
///
/// ```
/// use guanxi_core::analytics::{BgNbd, GammaGamma, PurchaseHistory, customer_lifetime_value};
/// let bg = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
/// let gg = GammaGamma { p: 6.25, q: 3.74, v: 15.44 };
/// let h = PurchaseHistory::new(2, 30.43, 38.86).monetary(40.0);
/// let year = customer_lifetime_value(&bg, &gg, &h, 12, 0.01, 4.345);
/// let half = customer_lifetime_value(&bg, &gg, &h, 6, 0.01, 4.345);
/// assert!(year > half && half > 0.0);
/// ```
pub fn customer_lifetime_value(
    purchases: &BgNbd,
    spend: &GammaGamma,
    h: &PurchaseHistory,
    months: u32,
    monthly_discount: f64,
    units_per_month: f64,
) -> f64 {
    let value = spend.expected_average_value(h.frequency, h.monetary);
    let mut clv = 0.0;
    for month in 1..=months {
        let t = f64::from(month) * units_per_month;
        let expected = purchases.expected_purchases(t, h) - purchases.expected_purchases(t - units_per_month, h);
        clv += value * expected / (1.0 + monthly_discount).powf(f64::from(month));
    }
    clv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_without_a_finite_maximum_ends_at_the_wall_not_in_a_loop() {
        // Everyone buys every 11 days and nobody ever leaves: the leaving chance's Beta runs
        // off to a → ∞, b → ∞; the fit stops with finite parameters.
        let data: Vec<PurchaseHistory> = (0..40u32)
            .map(|i| {
                let x = i % 4;
                PurchaseHistory::new(x, f64::from(11 * x), f64::from(11 * x + 1 + i % 5))
            })
            .collect();
        let fit = BgNbd::fit(&data).unwrap();
        let m = fit.model;
        assert!([m.r, m.alpha, m.a, m.b].iter().all(|v| v.is_finite() && *v > 0.0), "{m:?}");
        let h = data[3];
        assert!(m.probability_alive(&h) > 0.99 && m.expected_purchases(90.0, &h).is_finite());
    }
}
