//! Customer analytics (客户分析): the models fitted over purchase histories — BG/NBD for how
//! often a customer buys and whether they are still a customer, Gamma-Gamma for how much —
//! and what they predict (P(alive), expected purchases, lifetime value). Pure functions over
//! per-customer summaries: the store computes the summaries, nothing here reads one.

pub mod clv;
pub mod rfm;

pub use clv::{BgNbd, Fitted, GammaGamma, PurchaseHistory, customer_lifetime_value};
pub use rfm::{CustomerPurchases, RfmConfig, RfmScore, RfmSegmentRule, rfm_scores};
