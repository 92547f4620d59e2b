//! Optional local authentication helpers, for hosts without an identity provider of their own:
//! argon2id password hashing and RFC 6238 time-based one-time passwords (TOTP) as a second
//! factor. Time is passed in (from the host's clock), never read here.

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use guanxi_core::{Error, Result, ValidationReason};

/// Hashes a password with argon2id (default parameters, a random salt) into a PHC string such as
/// `$argon2id$v=19$m=19456,t=2,p=1$…`, which carries everything `verify_password` needs.
///
/// ```
/// let phc = guanxi::auth::hash_password("correct horse battery staple")?;
/// assert!(phc.starts_with("$argon2id$"));
/// assert!(guanxi::auth::verify_password("correct horse battery staple", &phc)?);
/// assert!(!guanxi::auth::verify_password("Tr0ub4dor&3", &phc)?);
/// # Ok::<(), guanxi::Error>(())
/// ```
pub fn hash_password(password: &str) -> Result<String> {
    if password.is_empty() {
        return Err(Error::invalid("password", ValidationReason::Required));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::invalid("password", ValidationReason::Invalid { detail: e.to_string() }))
}

/// Whether `password` matches a PHC hash from [`hash_password`]. A malformed hash is a
/// validation error on `password_hash`, not a silent `false`.
pub fn verify_password(password: &str, phc: &str) -> Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| {
        Error::invalid("password_hash", ValidationReason::Invalid { detail: format!("is not a PHC string: {e}") })
    })?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// The HMAC of a TOTP generator.
///
/// ```
/// use guanxi::auth::TotpAlgorithm;
/// assert_eq!(TotpAlgorithm::default(), TotpAlgorithm::Sha1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TotpAlgorithm {
    /// HMAC-SHA1: what authenticator apps use.
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

/// An RFC 6238 TOTP generator: a shared secret (at least 128 bits), 6 to 8 digits, 30-second steps.
///
/// ```
/// use guanxi::auth::{Totp, TotpAlgorithm};
/// let secret = Totp::generate_secret();
/// let totp = Totp::from_base32(&secret, TotpAlgorithm::Sha1, 6)?;
/// let now = "2024-05-01T08:00:00Z".parse().unwrap();
/// let code = totp.code_at(now);
/// assert!(totp.verify(&code, now, 1));
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Totp(totp_rs::TOTP);

impl Totp {
    /// Seconds per step.
    pub const STEP_SECONDS: u64 = 30;

    /// A generator for a raw secret.
    pub fn new(secret: &[u8], algorithm: TotpAlgorithm, digits: u8) -> Result<Totp> {
        let algorithm = match algorithm {
            TotpAlgorithm::Sha1 => totp_rs::Algorithm::SHA1,
            TotpAlgorithm::Sha256 => totp_rs::Algorithm::SHA256,
            TotpAlgorithm::Sha512 => totp_rs::Algorithm::SHA512,
        };
        if !(6..=8).contains(&digits) {
            return Err(Error::invalid("digits", ValidationReason::Invalid { detail: "must be 6, 7 or 8".into() }));
        }
        totp_rs::TOTP::new(algorithm, usize::from(digits), 0, Self::STEP_SECONDS, secret.to_vec())
            .map(Totp)
            .map_err(|e| Error::invalid("secret", ValidationReason::Invalid { detail: format!("{e:?}") }))
    }

    /// A generator for a base32 secret, as authenticator apps show and scan it.
    pub fn from_base32(secret: &str, algorithm: TotpAlgorithm, digits: u8) -> Result<Totp> {
        let bytes = totp_rs::Secret::Encoded(secret.trim().replace(' ', "").to_uppercase())
            .to_bytes()
            .map_err(|_| Error::invalid("secret", ValidationReason::Invalid { detail: "is not base32".into() }))?;
        Self::new(&bytes, algorithm, digits)
    }

    /// A new random 160-bit secret, base32-encoded.
    pub fn generate_secret() -> String {
        let mut bytes = [0u8; 20];
        OsRng.fill_bytes(&mut bytes);
        // `to_encoded` of a raw secret is always the encoded form, whose Display is its text:
        // no branch can yield an empty secret.
        totp_rs::Secret::Raw(bytes.to_vec()).to_encoded().to_string()
    }

    /// The code for the step containing `at`.
    pub fn code_at(&self, at: DateTime<Utc>) -> String {
        self.0.generate(u64::try_from(at.timestamp()).unwrap_or(0))
    }

    /// Whether `code` is right at `at`, accepting up to `drift_steps` steps of clock drift
    /// either way (compared in constant time).
    pub fn verify(&self, code: &str, at: DateTime<Utc>, drift_steps: u8) -> bool {
        let t = at.timestamp();
        (-i64::from(drift_steps)..=i64::from(drift_steps)).any(|d| {
            let step_time = t + d * Self::STEP_SECONDS as i64;
            step_time >= 0 && self.0.check(code, step_time as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, Appendix B: 8-digit codes for the three HMACs at six instants.
    #[test]
    fn rfc_6238_test_vectors() {
        let sha1 = b"12345678901234567890".as_slice();
        let sha256 = b"12345678901234567890123456789012".as_slice();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".as_slice();
        let vectors: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, c1, c256, c512) in vectors {
            let at = DateTime::from_timestamp(t, 0).unwrap();
            assert_eq!(Totp::new(sha1, TotpAlgorithm::Sha1, 8).unwrap().code_at(at), c1, "sha1 at {t}");
            assert_eq!(Totp::new(sha256, TotpAlgorithm::Sha256, 8).unwrap().code_at(at), c256, "sha256 at {t}");
            assert_eq!(Totp::new(sha512, TotpAlgorithm::Sha512, 8).unwrap().code_at(at), c512, "sha512 at {t}");
        }
    }

    #[test]
    fn verify_accepts_drift_within_the_window_only() {
        let totp = Totp::new(b"12345678901234567890", TotpAlgorithm::Sha1, 6).unwrap();
        let at = DateTime::from_timestamp(1_111_111_111, 0).unwrap();
        let code = totp.code_at(at);
        assert!(totp.verify(&code, at, 0));
        assert!(totp.verify(&code, at + chrono::Duration::seconds(30), 1));
        assert!(!totp.verify(&code, at + chrono::Duration::seconds(90), 1));
        assert!(!totp.verify("000000", at, 1) || totp.code_at(at) == "000000");
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert!(
            matches!(Totp::new(b"short", TotpAlgorithm::Sha1, 6), Err(Error::Validation(v)) if v.field("secret").is_some())
        );
        assert!(
            matches!(Totp::new(b"12345678901234567890", TotpAlgorithm::Sha1, 5), Err(Error::Validation(v)) if v.field("digits").is_some())
        );
        assert!(
            matches!(Totp::from_base32("not base32!", TotpAlgorithm::Sha1, 6), Err(Error::Validation(v)) if v.field("secret").is_some())
        );
        assert!(
            matches!(verify_password("pw", "not-a-hash"), Err(Error::Validation(v)) if v.field("password_hash").is_some())
        );
        assert!(matches!(hash_password(""), Err(Error::Validation(v)) if v.field("password").is_some()));
        let a = hash_password("same").unwrap();
        assert_ne!(a, hash_password("same").unwrap(), "salted");
        assert_eq!(Totp::generate_secret().len(), 32);
    }
}
