//! Delivery of domain events to subscribers, after the change that caused them commits.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, RwLock};

use guanxi_core::Event;

type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

/// Identifies a subscription, for [`crate::Crm::unsubscribe`].
///
/// ```
/// let crm = guanxi::Crm::in_memory();
/// let id = crm.subscribe(|_event| {});
/// assert!(crm.unsubscribe(id));
/// assert!(!crm.unsubscribe(id));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

impl SubscriptionId {
    /// The number behind the id (for handing across language bindings).
    ///
    /// ```
    /// let crm = guanxi::Crm::in_memory();
    /// let id = crm.subscribe(|_| {});
    /// assert_eq!(guanxi::SubscriptionId::from_raw(id.get()), id);
    /// ```
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id with this number.
    pub fn from_raw(n: u64) -> Self {
        SubscriptionId(n)
    }
}

#[derive(Default)]
pub(crate) struct EventBus {
    listeners: RwLock<(u64, Vec<(SubscriptionId, Listener)>)>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.listeners.read().map(|l| l.1.len()).unwrap_or(0);
        f.debug_struct("EventBus").field("listeners", &n).finish()
    }
}

impl EventBus {
    pub(crate) fn subscribe(&self, listener: Listener) -> SubscriptionId {
        let mut guard = self.listeners.write().unwrap_or_else(|p| p.into_inner());
        guard.0 += 1;
        let id = SubscriptionId(guard.0);
        guard.1.push((id, listener));
        id
    }

    pub(crate) fn unsubscribe(&self, id: SubscriptionId) -> bool {
        let mut guard = self.listeners.write().unwrap_or_else(|p| p.into_inner());
        let before = guard.1.len();
        guard.1.retain(|(i, _)| *i != id);
        guard.1.len() != before
    }

    /// Whether anyone listens (a bulk write keeps no events for nobody).
    pub(crate) fn has_listeners(&self) -> bool {
        !self.listeners.read().unwrap_or_else(|p| p.into_inner()).1.is_empty()
    }

    /// Calls every listener with every event, in order. A panicking listener does not stop the
    /// others, and cannot undo the commit that already happened.
    pub(crate) fn publish(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        // Snapshot the listeners so a listener may (un)subscribe without deadlocking.
        let listeners: Vec<Listener> = {
            let guard = self.listeners.read().unwrap_or_else(|p| p.into_inner());
            guard.1.iter().map(|(_, l)| l.clone()).collect()
        };
        for event in events {
            for l in &listeners {
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| l(event))) {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a non-text panic payload".to_owned());
                    tracing::error!(event = ?event.payload, panic = %what, "an event listener panicked; the others still run");
                }
            }
        }
    }
}
