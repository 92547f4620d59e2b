//! Duplicates (查重): match keys, scored and explained match rules, the whole-base scan by
//! blocking keys, and survivorship for merges.
//!
//! Pure: the `Crm` facade builds [`MatchProfile`]s from stored customers and their contacts
//! and runs these functions over them.

mod keys;
mod merge;
mod rules;
mod scan;

pub use keys::{address_key, company_key, email_key, person_key, phone_key};
pub use merge::{FieldChoice, MERGED_FIELDS, MergeRequest, Survivorship, survive};
pub use rules::{Comparison, MatchCandidate, MatchField, MatchProfile, MatchReason, MatchRule, MatchRules, WITHHELD};
pub use scan::{
    ClusterLink, DuplicateCluster, MatchKeys, NotDuplicates, ScanOptions, ScanStats, blocking_keys, contact_match_keys,
    customer_match_keys, match_keys, scan,
};
