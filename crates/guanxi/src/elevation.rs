//! Verified elevation: sensitive operations need an actor whose elevation the `Crm` granted
//! itself, after checking the user's password (argon2id), a TOTP code, or the host's own
//! verifier. A granted elevation carries an HMAC proof under a key of this handle, so it
//! cannot be forged or stretched, and lasts at most the handle's window (15 minutes by default).

use crate::handles::Access;
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
}

fn refusal(user: &UserId, why: &str) -> Error {
    Error::PermissionDenied { action: "elevate".into(), entity: EntityKind::User, reason: format!("user {user} {why}") }
}

impl Access<'_> {
    /// Sets `user`'s password (stored as an argon2id hash), which [`Access::elevate`](crate::Access::elevate) then
    /// checks. A user sets their own first password freely and changes it while elevated; an
    /// elevated administrator of users may set anyone's. Logged, without the password.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// assert!(matches!(crm.access().set_password(&alice, alice.user_id(), "short"), Err(Error::Validation(_))));
    /// crm.access().set_password(&alice, alice.user_id(), "correct horse battery")?;
    /// let elevated = crm.access().elevate(&alice, ElevationProof::Password("correct horse battery".into()))?;
    /// assert!(elevated.elevation_proof().is_some());
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn set_password(&self, actor: &Actor, user: &UserId, password: &str) -> Result<()> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Error::invalid(
                "password",
                ValidationReason::Invalid { detail: format!("must have at least {MIN_PASSWORD_CHARS} characters") },
            ));
        }
        let (stored, mut map) = self.crm.stored_credentials()?;
        self.crm.may_set_credentials(actor, user, map.get(user).is_some_and(|c| c.password.is_some()))?;
        map.entry(user.clone()).or_default().password = Some(hash_password(password)?);
        self.crm.write_credentials(actor, user, stored, &map, "password")
    }

    /// Enrolls (or replaces) `user`'s TOTP authenticator and returns its new base32 secret,
    /// for the host to show once (as text or a QR code); [`Access::elevate`](crate::Access::elevate) then accepts its
    /// codes. Who may do it is as for [`Access::set_password`](crate::Access::set_password).
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let secret = crm.access().enroll_totp(&alice, alice.user_id())?;
    /// let code = guanxi::auth::Totp::from_base32(&secret, guanxi::auth::TotpAlgorithm::Sha1, 6)?.code_at(chrono::Utc::now());
    /// assert!(crm.access().elevate(&alice, ElevationProof::Totp(code)).is_ok());
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn enroll_totp(&self, actor: &Actor, user: &UserId) -> Result<String> {
        let (stored, mut map) = self.crm.stored_credentials()?;
        self.crm.may_set_credentials(actor, user, map.get(user).is_some_and(|c| c.totp.is_some()))?;
        let secret = Totp::generate_secret();
        map.entry(user.clone()).or_default().totp = Some(secret.clone());
        self.crm.write_credentials(actor, user, stored, &map, "totp")?;
        Ok(secret)
    }

    /// Which credentials `user` has (the user themselves, or whoever may read users).
    pub fn credentials(&self, actor: &Actor, user: &UserId) -> Result<Credentials> {
        if actor.user_id() != user {
            self.crm.authorize(actor, Action::Read, EntityKind::User)?;
        }
        let (_, map) = self.crm.stored_credentials()?;
        Ok(map
            .get(user)
            .map(|c| Credentials { password: c.password.is_some(), totp: c.totp.is_some() })
            .unwrap_or_default())
    }

    /// Re-verifies `actor`'s user and returns the actor elevated for this handle's window (15
    /// minutes by default), with a proof only this handle accepts. Every attempt is logged
    /// (method and outcome, never the secret); a refused one is
    /// [`Error::PermissionDenied`] on action `elevate`.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::access::User;
    /// let crm = Crm::in_memory();
    /// let root = Actor::user("root")?;
    /// crm.access().set_password(&root, root.user_id(), "correct horse battery")?;
    /// let admin = crm.access().elevate(&root, ElevationProof::Password("correct horse battery".into()))?;
    /// crm.access().set_user(&admin, User::new("root", "管理员")?.role(BuiltinRole::Administrator))?;
    /// // Access control is on now: an asserted elevation no longer counts, a proven one does.
    /// let asserted = root.clone().elevated_until("2999-01-01T00:00:00Z".parse().unwrap());
    /// assert!(matches!(crm.access().set_user(&asserted, User::new("wang", "王")?), Err(Error::ElevationRequired { .. })));
    /// crm.access().set_user(&admin, User::new("wang", "王")?)?;
    /// assert!(matches!(crm.access().elevate(&root, ElevationProof::Password("wrong".into())), Err(Error::PermissionDenied { .. })));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn elevate(&self, actor: &Actor, proof: ElevationProof) -> Result<Actor> {
        let user = actor.user_id();
        let now = self.crm.clock.now();
        let checked: Result<bool> = match &proof {
            ElevationProof::Password(p) => {
                match self.crm.stored_credentials()?.1.get(user).and_then(|c| c.password.clone()) {
                    Some(phc) => verify_password(p, &phc),
                    None => Err(refusal(user, "has no password set")),
                }
            }
            ElevationProof::Totp(code) => match self.crm.stored_credentials()?.1.get(user).and_then(|c| c.totp.clone())
            {
                Some(secret) => Totp::from_base32(&secret, TotpAlgorithm::Sha1, 6).map(|t| t.verify(code, now, 1)),
                None => Err(refusal(user, "has no TOTP authenticator enrolled")),
            },
            ElevationProof::Host(token) => match &self.crm.elevations.verifier {
                Some(v) => v.verify(user, token),
                None => Err(Error::InvalidState("no host elevation verifier is configured".into())),
            },
        };
        let ok = matches!(checked, Ok(true));
        let until = now + self.crm.elevations.window;
        let mut change = vec![FieldChange::new("method", None, Some(proof.method().into()))];
        change.push(if ok {
            FieldChange::new("elevated_until", None, Some(until.to_rfc3339().into()))
        } else {
            FieldChange::new("refused", None, Some(true.into()))
        });
        let entry = log(now, actor, EntityKind::User, user.to_string(), None, ChangeAction::Elevate, change);
        self.crm.commit(actor, now, &Changes { change_log: vec![entry], ..Default::default() }, Vec::new())?;
        match checked {
            Ok(true) => {
                Ok(Actor::new(user.clone()).with_proven_elevation(until, self.crm.elevations.sign(user, until)))
            }
            Ok(false) => Err(refusal(user, &format!("did not pass the {} check", proof.method()))),
            Err(e) => Err(e),
        }
    }
}
