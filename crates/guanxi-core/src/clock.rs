//! Time and identity sources, injected so the domain stays deterministic under test.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use uuid::{ContextV7, Timestamp, Uuid};

/// Where the current instant comes from. The core never reads the system clock itself.
///
/// ```
/// use guanxi_core::{Clock, FixedClock};
/// let clock = FixedClock::at("2024-05-01T08:00:00Z".parse().unwrap());
/// assert_eq!(clock.now().to_rfc3339(), "2024-05-01T08:00:00+00:00");
/// ```
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant, UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock: the default outside tests.
///
/// ```
/// use guanxi_core::{Clock, SystemClock};
/// assert!(SystemClock.now().timestamp() > 1_700_000_000);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told to move: for tests and replays.
///
/// ```
/// use chrono::Duration;
/// use guanxi_core::{Clock, FixedClock};
/// let clock = FixedClock::at("2024-05-01T23:59:00Z".parse().unwrap());
/// clock.advance(Duration::minutes(2));
/// assert_eq!(clock.now().date_naive().to_string(), "2024-05-02");
/// ```
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock showing `at`.
    pub fn at(at: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(at))
    }

    /// Sets the time shown.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.lock() = at;
    }

    /// Moves the time shown forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut t = self.lock();
        *t += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A poisoned lock still holds a valid instant.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

/// Mints UUIDv7 ids stamped with the injected clock's time; ids minted from one generator are
/// strictly increasing even within one millisecond (uuid's `ContextV7` counter).
///
/// ```
/// use guanxi_core::{FixedClock, IdGenerator, Clock};
/// let clock = FixedClock::at("2024-05-01T08:00:00Z".parse().unwrap());
/// let ids = IdGenerator::default();
/// let a = ids.next(clock.now());
/// let b = ids.next(clock.now());
/// assert!(a < b);
/// assert_eq!(a.get_version_num(), 7);
/// ```
#[derive(Debug, Default)]
pub struct IdGenerator(Mutex<ContextV7>);

impl IdGenerator {
    /// A new UUIDv7 for the instant `at`.
    pub fn next(&self, at: DateTime<Utc>) -> Uuid {
        let secs = u64::try_from(at.timestamp()).unwrap_or(0);
        // The context is not Sync (it counts in Cells); the lock makes the generator shareable.
        let ctx = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Uuid::new_v7(Timestamp::from_unix(&*ctx, secs, at.timestamp_subsec_nanos()))
    }
}
