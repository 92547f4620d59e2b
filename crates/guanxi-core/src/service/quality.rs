//! Quality: risk keywords that flag tickets and replies, and satisfaction (CSAT) figures.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::normalize::fold_text;

/// Words that flag a conversation for a supervisor by default.
pub const DEFAULT_RISK_KEYWORDS: &[&str] = &[
    "投诉",
    "不满",
    "退款",
    "差评",
    "曝光",
    "举报",
    "律师",
    "起诉",
    "12315",
    "refund",
    "complaint",
    "lawyer",
    "cancel",
];

/// The risk keywords found in a text: folded (NFKC, case) before matching, reported as
/// configured, each once, in configuration order.
///
/// ```
/// use guanxi_core::service::risk_flags;
/// let words = ["投诉".to_string(), "refund".to_string()];
/// assert_eq!(risk_flags(&words, "再不处理我就投诉！I want a REFUND"), ["投诉", "refund"]);
/// assert!(risk_flags(&words, "谢谢").is_empty());
/// ```
pub fn risk_flags(keywords: &[String], text: &str) -> Vec<String> {
    let hay = fold_text(text).to_lowercase();
    keywords.iter().filter(|k| !k.is_empty() && hay.contains(&fold_text(k).to_lowercase())).cloned().collect()
}

/// Satisfaction figures over a set of ratings.
///
/// ```
/// use guanxi_core::service::Csat;
/// let c = Csat::from_scores([5, 4, 2, 5]);
/// assert_eq!((c.responses, c.mean.unwrap().to_string(), c.satisfied_rate.unwrap().to_string()), (4, "4".into(), "0.75".into()));
/// assert!(Csat::from_scores([]).mean.is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Csat {
    /// Ratings counted.
    pub responses: u64,
    /// Mean score (1–5), to 4 places.
    pub mean: Option<Decimal>,
    /// Share of ratings of 4 or 5 (the usual CSAT), to 4 places.
    pub satisfied_rate: Option<Decimal>,
}

impl Csat {
    /// Figures over scores.
    pub fn from_scores(scores: impl IntoIterator<Item = u8>) -> Csat {
        let (mut n, mut sum, mut good) = (0u64, 0u64, 0u64);
        for s in scores {
            n += 1;
            sum += u64::from(s);
            good += u64::from(s >= 4);
        }
        Csat { responses: n, mean: ratio(sum, n), satisfied_rate: ratio(good, n) }
    }
}

/// `a / b` to 4 decimal places (None when `b` is 0).
pub(crate) fn ratio(a: u64, b: u64) -> Option<Decimal> {
    (b > 0).then(|| (Decimal::from(a) / Decimal::from(b)).round_dp(4).normalize())
}
