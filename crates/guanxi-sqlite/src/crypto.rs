//! Field encryption at rest: AES-256-GCM for sensitive values, and a keyed blind index
//! (HMAC-SHA-256) so exact-match lookups work without decrypting.
//!
//! Two subkeys are derived from the host's key, one per purpose, so the index never reveals
//! anything about the encryption key. Each ciphertext is bound to its row and column (as
//! associated data): a value copied to another row fails authentication instead of decrypting.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use guanxi_core::{EncryptionError, Error, Result};

/// Marks encrypted column values (format version 1: base64 of nonce ‖ ciphertext ‖ tag).
const PREFIX: &str = "gx1:";

/// A 256-bit key for field encryption, supplied by the host (from its keychain or KMS).
///
/// ```
/// use guanxi_sqlite::FieldKey;
/// let key = FieldKey::from_bytes(&[7u8; 32]).unwrap();
/// assert!(FieldKey::from_bytes(&[7u8; 16]).is_err());
/// let fresh = FieldKey::generate();
/// assert_ne!(fresh.fingerprint(), key.fingerprint());
/// ```
#[derive(Clone)]
pub struct FieldKey([u8; 32]);

impl std::fmt::Debug for FieldKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "FieldKey({})", self.fingerprint())
    }
}

impl FieldKey {
    /// A key from 32 bytes; any other length is [`EncryptionError::BadKeyLength`].
    pub fn from_bytes(bytes: &[u8]) -> Result<FieldKey> {
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| Error::Encryption(EncryptionError::BadKeyLength(bytes.len())))?;
        Ok(FieldKey(key))
    }

    /// A fresh random key.
    pub fn generate() -> FieldKey {
        FieldKey(Aes256Gcm::generate_key(&mut OsRng).into())
    }

    /// The key's bytes, for the host to store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short public fingerprint identifying the key (a keyed hash; reveals nothing of it).
    pub fn fingerprint(&self) -> String {
        Cipher::new(self).digest("guanxi key fingerprint")[..16].to_owned()
    }
}

/// The derived keys of one [`FieldKey`].
pub(crate) struct Cipher {
    aead: Aes256Gcm,
    index_key: [u8; 32],
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; new_from_slice cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl Cipher {
    pub(crate) fn new(key: &FieldKey) -> Cipher {
        let enc = hmac(&key.0, b"guanxi/field-encryption/v1");
        Cipher { aead: Aes256Gcm::new(&enc.into()), index_key: hmac(&key.0, b"guanxi/blind-index/v1") }
    }

    /// Whether a stored value is encrypted.
    pub(crate) fn is_encrypted(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// Encrypts `plain` bound to `context` (table, column and row id).
    pub(crate) fn encrypt(&self, context: &str, plain: &str) -> Result<String> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self
            .aead
            .encrypt(&nonce, Payload { msg: plain.as_bytes(), aad: context.as_bytes() })
            .map_err(|_| Error::Encryption(EncryptionError::Corrupt { field: context.to_owned() }))?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(format!("{PREFIX}{}", STANDARD_NO_PAD.encode(out)))
    }

    /// Decrypts a value written by [`Cipher::encrypt`] under the same context.
    pub(crate) fn decrypt(&self, context: &str, stored: &str) -> Result<String> {
        let corrupt = || Error::Encryption(EncryptionError::Corrupt { field: context.to_owned() });
        let raw = stored.strip_prefix(PREFIX).ok_or_else(corrupt)?;
        let bytes = STANDARD_NO_PAD.decode(raw).map_err(|_| corrupt())?;
        if bytes.len() < 12 {
            return Err(corrupt());
        }
        let (nonce, ct) = bytes.split_at(12);
        let plain = self
            .aead
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context.as_bytes() })
            .map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }

    /// The blind-index digest of a value (hex HMAC-SHA-256 under the index subkey).
    pub(crate) fn digest(&self, value: &str) -> String {
        hmac(&self.index_key, value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What the database stores to recognise its key.
    pub(crate) fn key_check(&self) -> String {
        self.digest("guanxi key check")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_context() {
        let c = Cipher::new(&FieldKey::from_bytes(&[1; 32]).unwrap());
        let s = c.encrypt("contacts.phones:1", "[\"+8613812345678\"]").unwrap();
        assert!(Cipher::is_encrypted(&s) && !s.contains("138"));
        assert_eq!(c.decrypt("contacts.phones:1", &s).unwrap(), "[\"+8613812345678\"]");
        // Moved to another row, or read under another key: an error, never garbage.
        assert!(matches!(c.decrypt("contacts.phones:2", &s), Err(Error::Encryption(EncryptionError::Corrupt { .. }))));
        let other = Cipher::new(&FieldKey::from_bytes(&[2; 32]).unwrap());
        assert!(other.decrypt("contacts.phones:1", &s).is_err());
        // Two encryptions of one value differ (random nonces); digests are equal and keyed.
        assert_ne!(c.encrypt("x", "v").unwrap(), c.encrypt("x", "v").unwrap());
        assert_eq!(c.digest("v"), c.digest("v"));
        assert_ne!(c.digest("v"), other.digest("v"));
    }
}
