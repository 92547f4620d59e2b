//! Duplicates and files for Kotlin and Swift: the check on create, the scan, not-duplicate
//! marks, merge and undo; import (with an optional progress listener) and streamed export to
//! a file. Conversions only.

use std::collections::HashMap;

use guanxi::dedup as core;

use crate::handle;
use crate::{AuditCheck, Customer, CustomerFilter, Customers, NewCustomer, Result, Uuid, id};

/// What one rule found for a pair: the field, its similarity, whether it agrees, the
/// Fellegi–Sunter match weight (probabilistic scoring), and the reason as a sentence ("same
/// phone as C20240501001 华为技术有限公司", "different surname from P1 Ann Lee: -4.2").
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MatchReason {
    pub field: core::MatchField,
    pub similarity: f64,
    pub agrees: bool,
    pub match_weight: Option<f64>,
    pub text: String,
}

/// A likely duplicate: the other customer, the score in [0, 1], the reasons (strongest first).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MatchCandidate {
    /// `None` (with `code` and `name` empty) for a customer outside the caller's scope.
    pub id: Option<Uuid>,
    pub code: String,
    pub name: String,
    pub score: f64,
    pub reasons: Vec<MatchReason>,
}

impl From<core::MatchCandidate> for MatchCandidate {
    fn from(c: core::MatchCandidate) -> Self {
        let reasons = c
            .reasons
            .iter()
            .map(|r| MatchReason {
                text: r.to_string(),
                field: r.field.clone(),
                similarity: r.similarity,
                agrees: r.agrees,
                match_weight: r.match_weight,
            })
            .collect();
        MatchCandidate { id: c.id.map(|id| id.0), code: c.code, name: c.name, score: c.score, reasons }
    }
}

fn candidates(v: Vec<core::MatchCandidate>) -> Vec<MatchCandidate> {
    v.into_iter().map(Into::into).collect()
}

/// What a checked create does with likely duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OnDuplicate {
    /// Create without looking.
    Allow,
    /// Create and report them.
    Warn,
    /// Refuse with `CrmError.Duplicate`.
    Block,
    /// Create nothing: add tags and new contacts to the best match.
    Link,
}

/// The result of a checked create.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CheckedCreate {
    pub customer: Customer,
    pub created: bool,
    pub duplicates: Vec<MatchCandidate>,
}

/// One scored pair of a cluster.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ClusterLink {
    pub from: Uuid,
    pub to: MatchCandidate,
}

/// Customers that are likely one.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DuplicateCluster {
    pub members: Vec<Uuid>,
    pub links: Vec<ClusterLink>,
    pub score: f64,
}

/// A whole-base scan or a link: its clusters and what it did.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ScanReport {
    pub clusters: Vec<DuplicateCluster>,
    pub profiles: u64,
    pub compared_pairs: u64,
    pub matched_pairs: u64,
    pub excluded_pairs: u64,
    pub skipped_blocks: u64,
    /// The largest block blocking compared.
    pub largest_block: u64,
    /// The probabilistic model the scan estimated (None with weighted scoring, or when the
    /// rules carry one).
    pub estimated: Option<core::ProbabilisticModel>,
}

impl ScanReport {
    fn new(clusters: Vec<DuplicateCluster>, stats: core::ScanStats) -> ScanReport {
        ScanReport {
            clusters,
            profiles: stats.profiles,
            compared_pairs: stats.compared_pairs,
            matched_pairs: stats.matched_pairs,
            excluded_pairs: stats.excluded_pairs,
            skipped_blocks: stats.skipped_blocks,
            largest_block: stats.largest_block,
            estimated: stats.estimated,
        }
    }
}

impl From<core::DuplicateCluster> for DuplicateCluster {
    fn from(c: core::DuplicateCluster) -> Self {
        DuplicateCluster {
            members: c.members.iter().map(|m| m.0).collect(),
            links: c.links.into_iter().map(|l| ClusterLink { from: l.from.0, to: l.to.into() }).collect(),
            score: c.score,
        }
    }
}

/// Two customers known to be one.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct KnownPair {
    pub a: Uuid,
    pub b: Uuid,
}

/// Of known duplicate pairs, how many blocking compares (`compared`; `missed` lists the
/// rest: blocking loses them) and how many of those score as duplicates (`matched`;
/// `unmatched` lists the rest: scoring loses them). `ceiling` is compared / known.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct BlockingReport {
    pub stats: core::BlockingStats,
    pub known: u64,
    pub compared: u64,
    pub matched: u64,
    pub ceiling: f64,
    pub missed: Vec<KnownPair>,
    pub unmatched: Vec<KnownPair>,
}

/// How a merge picks each field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Survivorship {
    MostRecent,
    MostComplete,
}

/// What to merge; `choices` maps a field ("name", "address", "custom.budget", …) to the
/// record whose value it keeps.
#[derive(Debug, Clone, uniffi::Record)]
pub struct MergeRequest {
    pub survivor: Uuid,
    pub merged: Vec<Uuid>,
    /// Default most recent.
    #[uniffi(default = None)]
    pub policy: Option<Survivorship>,
    #[uniffi(default)]
    pub choices: HashMap<String, Uuid>,
}

impl MergeRequest {
    fn into_core(self) -> core::MergeRequest {
        let policy = match self.policy {
            None | Some(Survivorship::MostRecent) => core::Survivorship::MostRecent,
            Some(Survivorship::MostComplete) => core::Survivorship::MostComplete,
        };
        let mut r = core::MergeRequest::new(id(self.survivor), self.merged.into_iter().map(id)).policy(policy);
        for (field, from) in self.choices {
            r = r.choose(field, id(from));
        }
        r
    }
}

/// A field whose records disagree and the record its value comes from (the value itself is
/// the plan's `survivor` field of that name, typed).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FieldChoice {
    pub field: String,
    pub from: Uuid,
}

/// What a merge does (or did).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MergePlan {
    pub survivor: Customer,
    pub merged: Vec<Uuid>,
    pub fields: Vec<FieldChoice>,
    pub tags_added: Vec<String>,
    pub contacts: Vec<Uuid>,
    pub interactions: Vec<Uuid>,
    pub opportunities: Vec<Uuid>,
    pub tickets: Vec<Uuid>,
    pub tasks: Vec<Uuid>,
}

impl From<guanxi::MergePlan> for MergePlan {
    fn from(p: guanxi::MergePlan) -> Self {
        MergePlan {
            survivor: p.survivor,
            merged: p.merged.iter().map(|m| m.id.0).collect(),
            fields: p.fields.into_iter().map(|f| FieldChoice { field: f.field, from: f.from.0 }).collect(),
            tags_added: p.tags_added,
            contacts: p.contacts.iter().map(|x| x.0).collect(),
            interactions: p.interactions.iter().map(|x| x.0).collect(),
            opportunities: p.opportunities.iter().map(|x| x.0).collect(),
            tickets: p.tickets.iter().map(|x| x.0).collect(),
            tasks: p.tasks.iter().map(|x| x.0).collect(),
        }
    }
}

/// A merge carried out; pass `merge_id` to `undoMerge`.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MergeOutcome {
    pub merge_id: String,
    pub plan: MergePlan,
}

/// What an import does with duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DuplicatePolicy {
    Skip,
    Update,
    Create,
    Link,
}

/// Whether one bad row stops an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ImportMode {
    AllOrNothing,
    KeepGood,
}

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FileFormat {
    Csv,
    Xlsx,
    /// Export only.
    JsonLines,
}

impl From<FileFormat> for guanxi::FileFormat {
    fn from(f: FileFormat) -> Self {
        match f {
            FileFormat::Csv => guanxi::FileFormat::Csv,
            FileFormat::Xlsx => guanxi::FileFormat::Xlsx,
            FileFormat::JsonLines => guanxi::FileFormat::JsonLines,
        }
    }
}

/// What an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ExportEntity {
    Customers,
    Contacts,
    Interactions,
}

/// How to import: `columns` maps a header to a field key ("name", "contact_phone", …) for
/// headers not named like a field.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ImportOptions {
    #[uniffi(default)]
    pub columns: HashMap<String, String>,
    /// Default skip.
    #[uniffi(default = None)]
    pub on_duplicate: Option<DuplicatePolicy>,
    /// Default all or nothing.
    #[uniffi(default = None)]
    pub mode: Option<ImportMode>,
}

impl ImportOptions {
    fn into_core(self) -> Result<guanxi::ImportOptions> {
        let mut o = guanxi::ImportOptions::default();
        for (header, key) in self.columns {
            let field = guanxi::ImportField::ALL.iter().copied().find(|f| f.key() == key).ok_or_else(|| {
                crate::invalid(
                    &format!("columns.{header}"),
                    guanxi::ValidationReason::not_allowed(&key, guanxi::ImportField::ALL.iter().map(|f| f.key())),
                )
            })?;
            o = o.column(header, field);
        }
        o.on_duplicate = match self.on_duplicate {
            None | Some(DuplicatePolicy::Skip) => guanxi::DuplicatePolicy::Skip,
            Some(DuplicatePolicy::Update) => guanxi::DuplicatePolicy::Update,
            Some(DuplicatePolicy::Create) => guanxi::DuplicatePolicy::Create,
            Some(DuplicatePolicy::Link) => guanxi::DuplicatePolicy::Link,
        };
        o.mode = match self.mode {
            None | Some(ImportMode::AllOrNothing) => guanxi::ImportMode::AllOrNothing,
            Some(ImportMode::KeepGood) => guanxi::ImportMode::KeepGood,
        };
        Ok(o)
    }
}

/// A rejected row's error: row (the header is row 1), column header, cell text, reason.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RowError {
    pub row: u64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub reason: String,
}

/// A row written nowhere, and why.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SkippedRow {
    pub row: u64,
    pub existing: Option<Uuid>,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ImportReport {
    pub rows: u64,
    pub created: Vec<Uuid>,
    pub updated: Vec<Uuid>,
    pub linked: Vec<Uuid>,
    pub skipped: Vec<SkippedRow>,
    pub rejected: Vec<RowError>,
    pub ignored_columns: Vec<String>,
    pub committed: bool,
}

impl From<guanxi::ImportReport> for ImportReport {
    fn from(r: guanxi::ImportReport) -> Self {
        let ids = |v: Vec<guanxi::CustomerId>| v.into_iter().map(|c| c.0).collect();
        ImportReport {
            rows: r.rows,
            created: ids(r.created),
            updated: ids(r.updated),
            linked: ids(r.linked),
            skipped: r
                .skipped
                .into_iter()
                .map(|s| SkippedRow { row: s.row, existing: s.existing.map(|e| e.0), reason: s.reason })
                .collect(),
            rejected: r
                .rejected
                .into_iter()
                .map(|e| RowError { row: e.row, column: e.column, value: e.value, reason: e.reason })
                .collect(),
            ignored_columns: r.ignored_columns,
            committed: r.committed,
        }
    }
}

/// Hears an import's progress (every 1,000 rows and at the end).
#[uniffi::export(callback_interface)]
pub trait ImportProgressListener: Send + Sync {
    fn on_progress(&self, done: u64, total: u64);
}

/// An import template (Chinese headers, one example row) as file bytes.
#[uniffi::export]
pub fn import_template(format: FileFormat) -> Result<Vec<u8>> {
    Ok(guanxi::Crm::import_template(format.into())?)
}

handle! {
    /// `crm.files()`: import, streamed export, backups.
    Files
}

#[uniffi::export]
impl Files {
    /// Writes a consistent online backup to the new file `path`; returns the copy's audit check.
    pub fn backup(&self, path: String) -> Result<AuditCheck> {
        Ok(self.inner.files().backup(&self.actor, std::path::Path::new(&path))?.into())
    }

    /// Imports customers from the bytes of a CSV or .xlsx file.
    pub fn import_customers(&self, data: Vec<u8>, options: ImportOptions) -> Result<ImportReport> {
        Ok(self.inner.files().import(&self.actor, &data, &options.into_core()?, |_| {})?.into())
    }

    /// Imports customers, telling `listener` the progress.
    pub fn import_customers_with_progress(
        &self,
        data: Vec<u8>,
        options: ImportOptions,
        listener: Box<dyn ImportProgressListener>,
    ) -> Result<ImportReport> {
        let report = self
            .inner
            .files()
            .import(&self.actor, &data, &options.into_core()?, |p| listener.on_progress(p.done, p.total))?;
        Ok(report.into())
    }

    /// Streams `entity` of the customers matching `filter` into a new file at `path`; returns
    /// the row count. Needs elevation when access control is on.
    pub fn export_to_path(
        &self,
        path: String,
        entity: ExportEntity,
        filter: CustomerFilter,
        format: FileFormat,
    ) -> Result<u64> {
        let entity = match entity {
            ExportEntity::Customers => guanxi::ExportEntity::Customers,
            ExportEntity::Contacts => guanxi::ExportEntity::Contacts,
            ExportEntity::Interactions => guanxi::ExportEntity::Interactions,
        };
        Ok(self.inner.files().export_to_path(
            &self.actor,
            entity,
            &filter.into_core()?,
            format.into(),
            std::path::Path::new(&path),
        )?)
    }
}

handle! {
    /// `crm.duplicates()`: the check, the scan, not-duplicate marks, merge and undo.
    Duplicates
}

#[uniffi::export]
impl Duplicates {
    /// The likely duplicates of a customer not yet created, best first.
    pub fn find(&self, input: NewCustomer) -> Result<Vec<MatchCandidate>> {
        Ok(candidates(self.inner.duplicates().find(&self.actor, &input.into_core()?)?))
    }

    /// The likely duplicates of a stored customer (pairs marked not duplicate left out).
    pub fn of(&self, customer: Uuid) -> Result<Vec<MatchCandidate>> {
        Ok(candidates(self.inner.duplicates().of(&self.actor, id(customer))?))
    }

    /// Scans the customers matching `filter` for clusters of likely duplicates.
    pub fn scan(&self, filter: CustomerFilter) -> Result<ScanReport> {
        let mut clusters = Vec::new();
        let stats = self.inner.duplicates().scan(&self.actor, &filter.into_core()?, |c| clusters.push(c.into()))?;
        Ok(ScanReport::new(clusters, stats))
    }

    /// Links the customers matching `left` against those matching `right`: only pairs with
    /// one customer from each side are compared.
    pub fn link(&self, left: CustomerFilter, right: CustomerFilter) -> Result<ScanReport> {
        let mut clusters = Vec::new();
        let (left, right) = (left.into_core()?, right.into_core()?);
        let stats = self.inner.duplicates().link(&self.actor, &left, &right, |c| clusters.push(c.into()))?;
        Ok(ScanReport::new(clusters, stats))
    }

    /// The match rules, scoring and blocking duplicates are judged by.
    pub fn rules(&self) -> Result<core::MatchRules> {
        Ok(self.inner.duplicates().rules(&self.actor)?)
    }

    /// Replaces the match rules (checked first: every bad rule is named); returns them.
    pub fn set_rules(&self, rules: core::MatchRules) -> Result<core::MatchRules> {
        Ok(self.inner.duplicates().set_rules(&self.actor, rules)?)
    }

    /// Estimates the probabilistic model from the customers matching `filter` and stores it.
    pub fn train(&self, filter: CustomerFilter) -> Result<core::MatchRules> {
        Ok(self.inner.duplicates().train(&self.actor, &filter.into_core()?)?)
    }

    /// Learns the probabilistic model from `same` (pairs confirmed as one customer) and the
    /// pairs marked not duplicate, and stores it.
    pub fn learn(&self, same: Vec<KnownPair>) -> Result<core::MatchRules> {
        let same: Vec<_> = same.into_iter().map(|k| (id(k.a), id(k.b))).collect();
        Ok(self.inner.duplicates().learn(&self.actor, &same)?)
    }

    /// Of pairs known to be duplicates, how many blocking compares and scoring then matches.
    pub fn blocking_report(&self, known: Vec<KnownPair>) -> Result<BlockingReport> {
        let known: Vec<_> = known.into_iter().map(|k| (id(k.a), id(k.b))).collect();
        let r = self.inner.duplicates().blocking_report(&self.actor, &known)?;
        let pairs = |v: Vec<(guanxi::CustomerId, guanxi::CustomerId)>| {
            v.into_iter().map(|(a, b)| KnownPair { a: a.0, b: b.0 }).collect()
        };
        Ok(BlockingReport {
            ceiling: r.ceiling(),
            stats: r.stats,
            known: r.known,
            compared: r.compared,
            matched: r.matched,
            missed: pairs(r.missed),
            unmatched: pairs(r.unmatched),
        })
    }

    /// Marks two customers as not duplicates: never proposed again.
    pub fn mark_not_duplicate(&self, a: Uuid, b: Uuid) -> Result<()> {
        Ok(self.inner.duplicates().mark_not_duplicate(&self.actor, id(a), id(b))?)
    }

    /// What a merge would do (nothing is written).
    pub fn plan_merge(&self, request: MergeRequest) -> Result<MergePlan> {
        Ok(self.inner.duplicates().plan_merge(&self.actor, &request.into_core())?.into())
    }

    /// Merges duplicates into the survivor in one transaction.
    pub fn merge(&self, request: MergeRequest) -> Result<MergeOutcome> {
        let done = self.inner.duplicates().merge(&self.actor, &request.into_core())?;
        Ok(MergeOutcome { merge_id: done.merge_id, plan: done.plan.into() })
    }

    /// Undoes a merge: every record back as it was.
    pub fn undo_merge(&self, merge_id: String) -> Result<()> {
        Ok(self.inner.duplicates().undo_merge(&self.actor, &merge_id)?)
    }

    /// The survivor a merged customer now lives on.
    pub fn merged_into(&self, customer: Uuid) -> Result<Option<Uuid>> {
        Ok(self.inner.duplicates().merged_into(&self.actor, id(customer))?.map(|c| c.0))
    }
}

/// The create with a duplicate policy lives beside the duplicate types.
#[uniffi::export]
impl Customers {
    /// Creates a customer after a duplicate check.
    pub fn create_checked(&self, input: NewCustomer, on_duplicate: OnDuplicate) -> Result<CheckedCreate> {
        let policy = match on_duplicate {
            OnDuplicate::Allow => guanxi::OnDuplicate::Allow,
            OnDuplicate::Warn => guanxi::OnDuplicate::Warn,
            OnDuplicate::Block => guanxi::OnDuplicate::Block,
            OnDuplicate::Link => guanxi::OnDuplicate::Link,
        };
        let done = self.inner.customers().create_checked(&self.actor, input.into_core()?, policy)?;
        Ok(CheckedCreate { customer: done.customer, created: done.created, duplicates: candidates(done.duplicates) })
    }
}
