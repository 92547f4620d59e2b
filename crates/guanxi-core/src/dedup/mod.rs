//! Duplicates (查重): match keys, typed match rules over any field (weighted or Fellegi–Sunter
//! scored, explained), blocking as configuration, the whole-base scan, and survivorship for
//! merges.
//!
//! Pure: the `Crm` facade builds [`MatchProfile`]s from stored customers and their contacts
//! and runs these functions over them.

mod blocking;
mod fields;
mod keys;
mod merge;
mod probabilistic;
mod rules;
mod scan;

pub use blocking::{
    Blocking, BlockingKey, BlockingStats, Ceiling, MAX_BLOCKING_KEYS, Pairs, candidate_pairs, recall_ceiling,
};
pub use fields::{Comparison, IdScheme, MatchField, date_similarity, identifier_key, phonetic_key, split_person_name};
pub use keys::{address_key, company_key, email_key, person_key, phone_key};
pub use merge::{FieldChoice, MERGED_FIELDS, MergeRequest, Survivorship, survive};
pub use probabilistic::{Agreement, FieldProbabilities, MAX_PROBABILISTIC_RULES, Pattern, ProbabilisticModel, Scoring};
pub use rules::{MAX_MATCH_RULES, MatchCandidate, MatchProfile, MatchReason, MatchRule, MatchRules, WITHHELD};
pub use scan::{
    ClusterLink, DuplicateCluster, MatchKeys, NotDuplicates, ScanOptions, ScanStats, contact_match_keys,
    customer_match_keys, identifier_match_keys, match_keys, scan,
};
