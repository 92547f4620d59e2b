//! Verified elevation: sensitive operations need an actor whose elevation the `Crm` granted
//! itself, after checking the user's password (argon2id), a TOTP code, or the host's own
//! verifier. A granted elevation carries an HMAC proof under a key of this handle, so it
//! cannot be forged or stretched, and lasts at most the handle's window (15 minutes by default).
//!
//! This module holds the proofs, the verifier trait and the handle's grant key; the calls that
//! check and store credentials are the `Access` handle's, in access_control.rs.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use guanxi_core::{Actor, Result, UserId};

/// The shortest password `set_password` accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A host's own check of a user (its identity provider, a fingerprint prompt, …), for
/// [`ElevationProof::Host`]. Register it with [`crate::CrmBuilder::elevation_verifier`].
///
/// ```
/// use guanxi::*;
/// #[derive(Debug)]
/// struct Sso;
/// impl ElevationVerifier for Sso {
///     fn verify(&self, user: &UserId, proof: &str) -> Result<bool> {
///         Ok(proof == format!("signed-by-idp:{user}"))
///     }
/// }
/// let crm = Crm::builder().elevation_verifier(std::sync::Arc::new(Sso)).build();
/// let alice = Actor::user("alice")?;
/// let elevated = crm.access().elevate(&alice, ElevationProof::Host("signed-by-idp:alice".into()))?;
/// assert!(elevated.elevation_proof().is_some());
/// assert!(crm.access().elevate(&alice, ElevationProof::Host("forged".into())).is_err());
/// # Ok::<(), guanxi::Error>(())
/// ```
pub trait ElevationVerifier: Send + Sync + fmt::Debug {
    /// Whether `proof` re-verifies `user` now. An `Err` is passed on to the caller.
    fn verify(&self, user: &UserId, proof: &str) -> Result<bool>;
}

/// What a user presents to be elevated.
#[derive(Clone, PartialEq, Eq)]
pub enum ElevationProof {
    /// The user's password (see [`Access::set_password`](crate::Access::set_password)).
    Password(String),
    /// A current code of the user's TOTP authenticator (see [`Access::enroll_totp`](crate::Access::enroll_totp)).
    Totp(String),
    /// Whatever the host's [`ElevationVerifier`] checks (a token from its identity provider).
    Host(String),
}

impl fmt::Debug for ElevationProof {
    // Never print the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method())
    }
}

impl ElevationProof {
    /// `password`, `totp` or `host`.
    pub fn method(&self) -> &'static str {
        match self {
            ElevationProof::Password(_) => "password",
            ElevationProof::Totp(_) => "totp",
            ElevationProof::Host(_) => "host",
        }
    }
}

/// Which credentials a user has.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// crm.access().set_password(&alice, alice.user_id(), "correct horse battery")?;
/// assert_eq!(crm.access().credentials(&alice, alice.user_id())?, Credentials { password: true, totp: false });
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// A password is set.
    pub password: bool,
    /// A TOTP authenticator is enrolled.
    pub totp: bool,
}

/// The handle's elevation settings and its proof key.
pub(crate) struct Elevations {
    key: [u8; 32],
    pub(crate) window: Duration,
    pub(crate) trust_asserted: bool,
    pub(crate) verifier: Option<Arc<dyn ElevationVerifier>>,
}

impl fmt::Debug for Elevations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Elevations")
            .field("window", &self.window)
            .field("trust_asserted", &self.trust_asserted)
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl Elevations {
    pub(crate) fn new(
        window: Option<Duration>,
        trust_asserted: bool,
        verifier: Option<Arc<dyn ElevationVerifier>>,
    ) -> Self {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Elevations { key, window: window.unwrap_or_else(|| Duration::minutes(15)), trust_asserted, verifier }
    }

    fn mac(&self, user: &UserId, until: DateTime<Utc>) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("any key size"));
        mac.update(user.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(until.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true).as_bytes());
        mac
    }

    pub(crate) fn sign(&self, user: &UserId, until: DateTime<Utc>) -> [u8; 32] {
        self.mac(user, until).finalize().into_bytes().into()
    }

    /// Whether `actor` is elevated at `now` in a way this handle accepts.
    pub(crate) fn admits(&self, actor: &Actor, now: DateTime<Utc>) -> bool {
        let Some(until) = actor.elevation().filter(|u| now < *u) else { return false };
        match actor.elevation_proof() {
            // Proven here: the proof must be ours, for this user and this end, and the end
            // within one window from now (a proof cannot outlive the window it was made for).
            Some(proof) => until - now <= self.window && self.mac(actor.user_id(), until).verify_slice(proof).is_ok(),
            None => self.trust_asserted,
        }
    }
}
