//! The whole-base scan: the pairs blocking proposes ([`candidate_pairs`]), scored by the
//! match rules, joined into clusters. With probabilistic scoring and no model, the model is
//! estimated by EM from the compared pairs first.
//!
//! Stored match keys ([`match_keys`]) serve the check on create: a profile's name key, its
//! one-character deletions, phones and e-mails, hashed stably so a stored index stays valid.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::blocking::{Pairs, candidate_pairs, for_each_deletion};
use super::fields::identifier_key;
use super::probabilistic::{MAX_PROBABILISTIC_RULES, Pattern, ProbabilisticModel, Scoring};
use super::rules::{MatchCandidate, MatchProfile, MatchRules};
use crate::customer::CustomerKind;
use crate::identifier::Identifier;
use crate::ids::CustomerId;
use crate::normalize::{Email, Phone};

/// The stored match keys' settings (the check on create looks them up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanOptions {
    /// A key shared by more customers is not looked up.
    pub max_block: usize,
    /// Names longer than this (in characters) get deletion keys for their first
    /// `max_deletion_len` characters only.
    pub max_deletion_len: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions { max_block: 100, max_deletion_len: 16 }
    }
}

/// Pairs people marked "not a duplicate": never proposed again. Order within a pair does not
/// matter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotDuplicates(BTreeSet<(CustomerId, CustomerId)>);

impl NotDuplicates {
    /// An empty set.
    pub fn new() -> NotDuplicates {
        NotDuplicates::default()
    }

    /// Marks a pair.
    pub fn insert(&mut self, a: CustomerId, b: CustomerId) {
        self.0.insert(if a <= b { (a, b) } else { (b, a) });
    }

    /// Whether a pair is marked.
    pub fn contains(&self, a: CustomerId, b: CustomerId) -> bool {
        self.0.contains(&if a <= b { (a, b) } else { (b, a) })
    }

    /// Number of marked pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is marked.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The marked pairs, each once (the smaller id first), in id order.
    ///
    /// ```
    /// use guanxi_core::{CustomerId, dedup::NotDuplicates};
    /// let (a, b) = (CustomerId(uuid::Uuid::from_u128(1)), CustomerId(uuid::Uuid::from_u128(2)));
    /// let marks: NotDuplicates = [(b, a)].into_iter().collect();
    /// assert_eq!(marks.pairs().collect::<Vec<_>>(), [(a, b)]);
    /// ```
    pub fn pairs(&self) -> impl Iterator<Item = (CustomerId, CustomerId)> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<(CustomerId, CustomerId)> for NotDuplicates {
    fn from_iter<I: IntoIterator<Item = (CustomerId, CustomerId)>>(iter: I) -> Self {
        let mut s = NotDuplicates::new();
        for (a, b) in iter {
            s.insert(a, b);
        }
        s
    }
}

/// One scored pair of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterLink {
    /// One customer.
    pub from: CustomerId,
    /// The other, its score and reasons.
    pub to: MatchCandidate,
}

/// Customers that are likely one: connected by pairs scoring at least the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DuplicateCluster {
    /// Members, in id order.
    pub members: Vec<CustomerId>,
    /// The pairs that connect them (a spanning set is enough; all scored pairs are listed).
    pub links: Vec<ClusterLink>,
    /// The best link score.
    pub score: f64,
}

/// What a scan did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanStats {
    /// Profiles scanned.
    pub profiles: u64,
    /// Distinct pairs scored.
    pub compared_pairs: u64,
    /// Pairs at or above the threshold.
    pub matched_pairs: u64,
    /// Pairs left out because they were marked not-duplicate.
    pub excluded_pairs: u64,
    /// Blocks larger than the limit, skipped.
    pub skipped_blocks: u64,
    /// The largest block compared.
    #[serde(default)]
    pub largest_block: u64,
    /// Clusters found.
    pub clusters: u64,
    /// The probabilistic model the scan estimated from the pairs it compared (None with
    /// weighted scoring, or when the rules carry a model).
    #[serde(default)]
    pub estimated: Option<ProbabilisticModel>,
}

fn contact_keys_with(
    phones: &BTreeSet<String>,
    emails: &BTreeSet<String>,
    hash: fn(u8, &str) -> u64,
    keys: &mut Vec<u64>,
) {
    keys.extend(phones.iter().map(|k| hash(0, k)));
    keys.extend(emails.iter().map(|k| hash(1, k)));
}

/// The name key and its one-character deletions (of the first `max_deletion_len` characters).
fn name_keys_with(name_key: &str, max_deletion_len: usize, hash: fn(u8, &str) -> u64, keys: &mut Vec<u64>) {
    if name_key.is_empty() {
        return;
    }
    keys.push(hash(2, name_key));
    let mut buf = String::with_capacity(name_key.len());
    for_each_deletion(name_key, max_deletion_len, &mut buf, &mut |d| keys.push(hash(3, d)));
}

/// The kind byte of a stored identifier key (0, 1: phone, e-mail; 2, 3: name and deletions).
const IDENTIFIER_KEY: u8 = 4;

/// A blocking key hashed for storage: the first 8 bytes of SHA-256, fixed across builds and
/// platforms (the scan's in-memory hash is not), so a stored index stays valid.
fn stable_key_hash(kind: u8, key: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update([kind]).chain_update(key.as_bytes()).finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(head)
}

/// The stored match keys a customer's name gives (its name key and the name key's deletions,
/// with the default [`ScanOptions`]). With [`contact_match_keys`] of its live
/// contacts they make [`match_keys`] of its profile: what stores index so that a new record's
/// likely duplicates are found without reading every customer.
///
/// ```
/// use guanxi_core::dedup::{customer_match_keys, match_keys, MatchProfile};
/// use guanxi_core::{CustomerId, CustomerKind};
/// let keys = customer_match_keys(CustomerKind::Enterprise, "华为技术有限公司");
/// let p = MatchProfile::new(CustomerId(uuid::Uuid::nil()), "C1", "华为技术股份有限公司", CustomerKind::Enterprise);
/// assert!(match_keys(&p).names.iter().any(|k| keys.contains(k))); // same name key 华为技术
/// ```
pub fn customer_match_keys(kind: CustomerKind, name: &str) -> Vec<u64> {
    let p = MatchProfile::new(CustomerId(uuid::Uuid::nil()), "", name, kind);
    let mut keys = Vec::with_capacity(20);
    name_keys_with(&p.name_key, ScanOptions::default().max_deletion_len, stable_key_hash, &mut keys);
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The stored match keys a customer's identifiers give, of any scheme. They are sensitive:
/// stores that encrypt keep them under a keyed digest, as a contact's keys.
///
/// ```
/// use guanxi_core::dedup::{identifier_match_keys, match_keys, MatchProfile};
/// use guanxi_core::{CustomerId, CustomerKind, IdScheme, Identifier};
/// let code = Identifier::parse(IdScheme::Uscc, "914403001922038216").unwrap();
/// let keys = identifier_match_keys(&[code]);
/// let renamed = MatchProfile::new(CustomerId(uuid::Uuid::nil()), "C2", "深圳某某", CustomerKind::Enterprise)
///     .identifier(IdScheme::Other, "9144 0300 1922 0382 16");
/// assert!(match_keys(&renamed).contacts.contains(&keys[0])); // same code, whatever its scheme
/// ```
pub fn identifier_match_keys(identifiers: &[Identifier]) -> Vec<u64> {
    let mut keys: Vec<u64> =
        identifiers.iter().map(|id| stable_key_hash(IDENTIFIER_KEY, &identifier_key(&id.value))).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The stored match keys a live contact gives: its phones and e-mails.
///
/// ```
/// use guanxi_core::dedup::{contact_match_keys, match_keys, MatchProfile};
/// use guanxi_core::normalize::Phone;
/// use guanxi_core::{CustomerId, CustomerKind};
/// let keys = contact_match_keys(&[Phone::parse("138 1234 5678").unwrap()], &[]);
/// let p = MatchProfile::new(CustomerId(uuid::Uuid::nil()), "C1", "星河", CustomerKind::Enterprise).phone("+8613812345678");
/// assert!(match_keys(&p).contacts.contains(&keys[0]));
/// ```
pub fn contact_match_keys(phones: &[Phone], emails: &[Email]) -> Vec<u64> {
    let phones: BTreeSet<String> = phones.iter().map(|p| p.as_str().to_owned()).collect();
    let emails: BTreeSet<String> = emails.iter().map(|e| e.as_str().to_owned()).collect();
    let mut keys = Vec::with_capacity(phones.len() + emails.len());
    contact_keys_with(&phones, &emails, stable_key_hash, &mut keys);
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The stored match keys of a profile, in two parts: what its name gives
/// ([`customer_match_keys`]) and what its phones and e-mails give ([`contact_match_keys`]).
/// Stores that encrypt contacts keep the second part under a keyed digest, so the parts are
/// looked up apart. Two profiles sharing a key may be duplicates; profiles sharing none are
/// never compared by a check on create.
///
/// ```
/// use guanxi_core::dedup::{match_keys, MatchProfile};
/// use guanxi_core::{CustomerId, CustomerKind};
/// let p = MatchProfile::new(CustomerId(uuid::Uuid::nil()), "C1", "华为技术", CustomerKind::Enterprise).phone("13812345678");
/// let keys = match_keys(&p);
/// assert_eq!((keys.names.len(), keys.contacts.len()), (5, 1)); // 华为技术 and its 4 deletions; one phone
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchKeys {
    /// Keys of the name: the name key and its one-character deletions.
    pub names: Vec<u64>,
    /// Keys of the sensitive values: phones, e-mails and identifiers.
    pub contacts: Vec<u64>,
}

/// The stored match keys of a profile (see [`MatchKeys`]).
///
/// ```
/// use guanxi_core::dedup::{match_keys, MatchProfile};
/// use guanxi_core::{CustomerId, CustomerKind};
/// let p = |name: &str| MatchProfile::new(CustomerId(uuid::Uuid::nil()), "", name, CustomerKind::Enterprise);
/// let (a, b) = (match_keys(&p("华为技术有限公司")), match_keys(&p("华为技朮有限公司")));
/// assert!(a.names.iter().any(|k| b.names.contains(k))); // 华为技 is a deletion of both
/// ```
pub fn match_keys(p: &MatchProfile) -> MatchKeys {
    let mut contacts = Vec::with_capacity(p.phones.len() + p.emails.len() + p.identifiers.len());
    contact_keys_with(&p.phones, &p.emails, stable_key_hash, &mut contacts);
    // Profile identifiers are already compared keys (`MatchProfile::identifier`).
    contacts.extend(p.identifiers.iter().map(|(_, key)| stable_key_hash(IDENTIFIER_KEY, key)));
    contacts.sort_unstable();
    contacts.dedup();
    let mut names = Vec::with_capacity(20);
    name_keys_with(&p.name_key, ScanOptions::default().max_deletion_len, stable_key_hash, &mut names);
    names.sort_unstable();
    names.dedup();
    MatchKeys { names, contacts }
}

/// Disjoint sets over profile indexes (path halving, union by size).
struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> UnionFind {
        UnionFind { parent: (0..n as u32).collect(), size: vec![1; n] }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a as usize] < self.size[b as usize] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b as usize] = a;
        self.size[a as usize] += self.size[b as usize];
    }
}

/// Scans profiles for duplicate clusters, handing each cluster to `on_cluster` (largest score
/// first is not promised: clusters come in order of their smallest member's position). Only
/// the pairs the rules' blocking proposes are scored, and with [`Pairs::Across`] only pairs
/// across the two sides.
///
/// ```
/// use guanxi_core::dedup::{scan, MatchProfile, MatchRules, NotDuplicates, Pairs};
/// use guanxi_core::{CustomerId, CustomerKind};
/// let id = |n| CustomerId(uuid::Uuid::from_u128(n));
/// let p = |n, name: &str| MatchProfile::new(id(n), &format!("C{n}"), name, CustomerKind::Enterprise);
/// // 4 has a typo in its name and shares 1's phone; 2 only resembles 1.
/// let profiles = [
///     p(1, "华为技术有限公司").phone("13812345678"),
///     p(2, "华夏技术有限公司"),
///     p(3, "华为技术股份有限公司"),
///     p(4, "华为技朮有限公司").phone("+86 138 1234 5678"),
/// ];
/// let mut found = vec![];
/// let stats = scan(&profiles, &MatchRules::default(), &NotDuplicates::new(), Pairs::Within, |c| found.push(c));
/// assert_eq!(found.len(), 1);
/// assert_eq!(found[0].members, [id(1), id(3), id(4)]);
/// assert_eq!(stats.clusters, 1);
/// ```
pub fn scan(
    profiles: &[MatchProfile],
    rules: &MatchRules,
    not_duplicates: &NotDuplicates,
    pairs: Pairs,
    mut on_cluster: impl FnMut(DuplicateCluster),
) -> ScanStats {
    let (candidates, blocked) = candidate_pairs(profiles, &rules.blocking, pairs);
    let mut stats = ScanStats {
        profiles: profiles.len() as u64,
        compared_pairs: blocked.pairs,
        skipped_blocks: blocked.skipped_blocks,
        largest_block: blocked.largest_block,
        ..ScanStats::default()
    };
    let mut links: BTreeMap<u32, Vec<(u32, MatchCandidate)>> = BTreeMap::new();
    let mut sets = UnionFind::new(profiles.len());
    let mut keep = |i: u32, j: u32, candidate: MatchCandidate, stats: &mut ScanStats| {
        if not_duplicates.contains(profiles[i as usize].id, profiles[j as usize].id) {
            stats.excluded_pairs += 1;
            return;
        }
        stats.matched_pairs += 1;
        sets.union(i, j);
        links.entry(i).or_default().push((j, candidate));
    };
    let distinct = |&(i, j): &(u32, u32)| profiles[i as usize].id != profiles[j as usize].id;
    match &rules.scoring {
        Scoring::Weighted => {
            for &(i, j) in candidates.iter().filter(|p| distinct(p)) {
                if let Some(c) = rules.duplicate(&profiles[i as usize], &profiles[j as usize]) {
                    keep(i, j, c, &mut stats);
                }
            }
        }
        Scoring::Probabilistic { model } => {
            let patterns: Vec<Pattern> =
                candidates.iter().map(|&(i, j)| rules.pattern(&profiles[i as usize], &profiles[j as usize])).collect();
            let model = match model {
                Some(m) => m.clone(),
                None => {
                    let m = ProbabilisticModel::estimate_from(
                        patterns.iter().copied(),
                        rules.rules.len().min(MAX_PROBABILISTIC_RULES),
                    );
                    stats.estimated = Some(m.clone());
                    m
                }
            };
            let mut probability: FxHashMap<Pattern, f64> = FxHashMap::default();
            for (&(i, j), pattern) in candidates.iter().zip(&patterns) {
                let p = *probability.entry(*pattern).or_insert_with(|| model.probability(*pattern));
                if p < rules.threshold || !distinct(&(i, j)) {
                    continue;
                }
                if let Some(c) = rules.explain(&profiles[i as usize], &profiles[j as usize], &model) {
                    keep(i, j, c, &mut stats);
                }
            }
        }
    }
    // Clusters keyed by their root, in order of first member (profiles are visited in order).
    let mut clusters: FxHashMap<u32, DuplicateCluster> = Default::default();
    let mut order = Vec::new();
    for i in 0..profiles.len() as u32 {
        let root = sets.find(i);
        if sets.size[root as usize] < 2 {
            continue;
        }
        let c = clusters.entry(root).or_insert_with(|| {
            order.push(root);
            DuplicateCluster { members: vec![], links: vec![], score: 0.0 }
        });
        c.members.push(profiles[i as usize].id);
        for (_, candidate) in links.remove(&i).unwrap_or_default() {
            c.score = c.score.max(candidate.score);
            c.links.push(ClusterLink { from: profiles[i as usize].id, to: candidate });
        }
    }
    for root in order {
        let Some(mut c) = clusters.remove(&root) else { continue };
        c.members.sort();
        c.members.dedup();
        stats.clusters += 1;
        on_cluster(c);
    }
    stats
}
