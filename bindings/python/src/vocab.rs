//! Vocabulary values as the `str` enums of `guanxi.fields` (`LifecycleStatus.CUSTOMER`), so a
//! record's status, kind or priority is the enum the package exports and compares equal to its
//! stable name.

use guanxi::sales::{LeadGrade, LeadStatus, ProbabilitySource, StageKind};
use guanxi::service::{Channel, Priority, TicketKind, TicketStatus};
use guanxi::{
    ChangeAction, CustomerKind, DecisionRole, EntityKind, FieldType, IdScheme, Industry, InteractionKind, Level,
    LifecycleStatus, SizeBand,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

/// A vocabulary of the core and the name of its enum in `guanxi.fields`.
pub(crate) trait Named: Copy {
    const ENUM: &'static str;
    fn name(self) -> &'static str;
}

macro_rules! named {
    ($($t:ty => $enum:literal),* $(,)?) => {$(
        impl Named for $t {
            const ENUM: &'static str = $enum;
            fn name(self) -> &'static str {
                self.as_str()
            }
        }
    )*};
}

named!(
    ChangeAction => "ChangeAction",
    Channel => "Channel",
    CustomerKind => "CustomerKind",
    DecisionRole => "DecisionRole",
    EntityKind => "EntityKind",
    FieldType => "FieldType",
    IdScheme => "IdScheme",
    Industry => "Industry",
    InteractionKind => "InteractionKind",
    LeadGrade => "LeadGrade",
    LeadStatus => "LeadStatus",
    Level => "Level",
    LifecycleStatus => "LifecycleStatus",
    Priority => "Priority",
    ProbabilitySource => "ProbabilitySource",
    SizeBand => "SizeBand",
    StageKind => "StageKind",
    TicketKind => "TicketKind",
    TicketStatus => "TicketStatus",
);

/// A vocabulary value that converts to its `guanxi.fields` enum member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Vocab<T>(pub(crate) T);

impl<T: Named> Vocab<T> {
    /// The stable name.
    pub(crate) fn name(self) -> &'static str {
        self.0.name()
    }
}

/// The enum member `ENUM(name)` of `guanxi.fields`.
fn member<'py>(py: Python<'py>, vocabulary: &str, name: &str) -> PyResult<Bound<'py, PyAny>> {
    static FIELDS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let fields = FIELDS.get_or_try_init(py, || py.import("guanxi.fields").map(Bound::unbind))?;
    fields.bind(py).getattr(vocabulary)?.call1((name,))
}

impl<'py, T: Named> IntoPyObject<'py> for Vocab<T> {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        member(py, T::ENUM, self.0.name())
    }
}

impl<'py, T: Named> IntoPyObject<'py> for &Vocab<T> {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        member(py, T::ENUM, self.0.name())
    }
}
