//! Verified elevation: sensitive operations need an actor whose elevation the `Crm` granted
//! itself, after checking the user's password (argon2id), a TOTP code, or the host's own
//! verifier. A granted elevation carries an HMAC proof under a key of this handle, so it
//! cannot be forged or stretched, and lasts at most the handle's window (15 minutes by default).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use guanxi_core::{
    Action, Actor, ChangeAction, Changes, EntityKind, Error, FieldChange, Result, UserId, ValidationReason,
};

use crate::auth::{Totp, TotpAlgorithm, hash_password, verify_password};
use crate::crm::{Crm, log};
use crate::sales_facade::{decode, setting_write};

const CREDENTIALS: &str = "auth.credentials";

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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stored {
    /// PHC string of the password's argon2id hash.
    password: Option<String>,
    /// Base32 TOTP secret.
    totp: Option<String>,
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

    fn sign(&self, user: &UserId, until: DateTime<Utc>) -> [u8; 32] {
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

impl Crm {
    fn stored_credentials(&self) -> Result<(Option<guanxi_core::Setting>, BTreeMap<UserId, Stored>)> {
        let stored = self.store.setting(CREDENTIALS)?;
        let map = stored.as_ref().map(decode).transpose()?.unwrap_or_default();
        Ok((stored, map))
    }

    /// Whoever may change `user`'s credentials: the user themselves (elevated, once they have
    /// one of that kind), or an elevated administrator of users.
    fn may_set_credentials(&self, actor: &Actor, user: &UserId, has_one: bool) -> Result<()> {
        if actor.user_id() == user {
            if has_one {
                self.require_elevation(actor, Action::Configure, EntityKind::User)?;
            }
            return Ok(());
        }
        self.authorize(actor, Action::Configure, EntityKind::User).map(|_| ())
    }

    fn write_credentials(
        &self,
        actor: &Actor,
        user: &UserId,
        stored: Option<guanxi_core::Setting>,
        map: &BTreeMap<UserId, Stored>,
        what: &str,
    ) -> Result<()> {
        let now = self.clock.now();
        let entry = log(
            now,
            actor,
            EntityKind::User,
            user.to_string(),
            None,
            ChangeAction::Elevate,
            // The fact, never the secret or its hash.
            vec![FieldChange::new(what, None, Some("set".into()))],
        );
        let changes = Changes {
            settings: vec![setting_write(CREDENTIALS.to_owned(), stored, map)?],
            change_log: vec![entry],
            ..Default::default()
        };
        self.commit(actor, now, &changes, Vec::new())
    }

    pub(crate) fn set_password(&self, actor: &Actor, user: &UserId, password: &str) -> Result<()> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Error::invalid(
                "password",
                ValidationReason::Invalid { detail: format!("must have at least {MIN_PASSWORD_CHARS} characters") },
            ));
        }
        let (stored, mut map) = self.stored_credentials()?;
        self.may_set_credentials(actor, user, map.get(user).is_some_and(|c| c.password.is_some()))?;
        map.entry(user.clone()).or_default().password = Some(hash_password(password)?);
        self.write_credentials(actor, user, stored, &map, "password")
    }

    pub(crate) fn enroll_totp(&self, actor: &Actor, user: &UserId) -> Result<String> {
        let (stored, mut map) = self.stored_credentials()?;
        self.may_set_credentials(actor, user, map.get(user).is_some_and(|c| c.totp.is_some()))?;
        let secret = Totp::generate_secret();
        map.entry(user.clone()).or_default().totp = Some(secret.clone());
        self.write_credentials(actor, user, stored, &map, "totp")?;
        Ok(secret)
    }

    pub(crate) fn credentials(&self, actor: &Actor, user: &UserId) -> Result<Credentials> {
        if actor.user_id() != user {
            self.authorize(actor, Action::Read, EntityKind::User)?;
        }
        let (_, map) = self.stored_credentials()?;
        Ok(map
            .get(user)
            .map(|c| Credentials { password: c.password.is_some(), totp: c.totp.is_some() })
            .unwrap_or_default())
    }

    pub(crate) fn elevate(&self, actor: &Actor, proof: ElevationProof) -> Result<Actor> {
        let user = actor.user_id();
        let now = self.clock.now();
        let checked: Result<bool> = match &proof {
            ElevationProof::Password(p) => {
                match self.stored_credentials()?.1.get(user).and_then(|c| c.password.clone()) {
                    Some(phc) => verify_password(p, &phc),
                    None => Err(refusal(user, "has no password set")),
                }
            }
            ElevationProof::Totp(code) => match self.stored_credentials()?.1.get(user).and_then(|c| c.totp.clone()) {
                Some(secret) => Totp::from_base32(&secret, TotpAlgorithm::Sha1, 6).map(|t| t.verify(code, now, 1)),
                None => Err(refusal(user, "has no TOTP authenticator enrolled")),
            },
            ElevationProof::Host(token) => match &self.elevations.verifier {
                Some(v) => v.verify(user, token),
                None => Err(Error::InvalidState("no host elevation verifier is configured".into())),
            },
        };
        let ok = matches!(checked, Ok(true));
        let until = now + self.elevations.window;
        let mut change = vec![FieldChange::new("method", None, Some(proof.method().into()))];
        change.push(if ok {
            FieldChange::new("elevated_until", None, Some(until.to_rfc3339().into()))
        } else {
            FieldChange::new("refused", None, Some(true.into()))
        });
        let entry = log(now, actor, EntityKind::User, user.to_string(), None, ChangeAction::Elevate, change);
        self.commit(actor, now, &Changes { change_log: vec![entry], ..Default::default() }, Vec::new())?;
        match checked {
            Ok(true) => Ok(Actor::new(user.clone()).with_proven_elevation(until, self.elevations.sign(user, until))),
            Ok(false) => Err(refusal(user, &format!("did not pass the {} check", proof.method()))),
            Err(e) => Err(e),
        }
    }
}

fn refusal(user: &UserId, why: &str) -> Error {
    Error::PermissionDenied { action: "elevate".into(), entity: EntityKind::User, reason: format!("user {user} {why}") }
}
