//! Tasks (任务): [`Tasks`].

use crate::crm::Crm;
use crate::*;
use guanxi_core::sales::*;

/// Tasks (任务): follow-ups with a due date; create, complete, list.
///
/// Got from [`Crm`] as `crm.sales().tasks()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// # use guanxi::sales::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// let t = crm.sales().tasks().create(&alice, NewTask::new("发报价", crm.now()))?;
/// crm.sales().tasks().complete(&alice, t.id, t.version)?;
/// assert_eq!(crm.sales().tasks().list_all(&alice, &TaskFilter::default())?.len(), 1);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Tasks<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Tasks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tasks")
    }
}

impl<'a> Tasks<'a> {
    /// Creates a task (owner: the actor unless given, which needs the assign permission).
    pub fn create(&self, actor: &Actor, input: NewTask) -> Result<Task> {
        self.crm.create_task(actor, input)
    }

    /// Marks a task done; it counts as activity on its opportunity (rotting and cadence
    /// restart from now).
    pub fn complete(&self, actor: &Actor, id: TaskId, expected_version: u64) -> Result<Task> {
        self.crm.complete_task(actor, id, expected_version)
    }

    /// The tasks matching `filter` that the actor may read, by due instant.
    pub fn list_all(&self, actor: &Actor, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.crm.tasks(actor, filter)
    }
}
