//! Field encryption at rest, shared by the backends: AES-256-GCM for sensitive values, and a
//! keyed blind index (HMAC-SHA-256) so exact-match lookups work without decrypting.
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

use std::sync::Arc;

use guanxi_core::{EncryptionError, Error, Result};

/// Marks encrypted column values (format version 1: base64 of nonce ‖ ciphertext ‖ tag).
const PREFIX: &str = "gx1:";

/// A 256-bit key for field encryption, supplied by the host (from its keychain or KMS).
///
/// ```
/// use guanxi_sql::FieldKey;
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

/// The derived keys of one [`FieldKey`]: what a backend encrypts, decrypts and digests with.
pub struct Cipher {
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
    /// The subkeys of `key`.
    pub fn new(key: &FieldKey) -> Cipher {
        let enc = hmac(&key.0, b"guanxi/field-encryption/v1");
        Cipher { aead: Aes256Gcm::new(&enc.into()), index_key: hmac(&key.0, b"guanxi/blind-index/v1") }
    }

    /// Whether a stored value is encrypted.
    pub fn is_encrypted(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// Encrypts `plain` bound to `context` (table, column and row id).
    pub fn encrypt(&self, context: &str, plain: &str) -> Result<String> {
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
    pub fn decrypt(&self, context: &str, stored: &str) -> Result<String> {
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
    pub fn digest(&self, value: &str) -> String {
        hmac(&self.index_key, value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What the database stores to recognise its key.
    pub fn key_check(&self) -> String {
        self.digest("guanxi key check")
    }
}

/// The settings key under which a store keeps its [`Cipher::key_check`].
pub const KEY_CHECK: &str = "field_key_check";

/// Whether a store encrypts fields, and the cipher if the key was given: what every read and
/// write of a backend consults.
#[derive(Debug, Default, Clone)]
pub struct FieldKeys {
    /// The store holds encrypted fields (it has a key check).
    pub encrypted: bool,
    /// The key's cipher, when the host gave the key.
    pub cipher: Option<Arc<Cipher>>,
    /// The key's fingerprint, when the host gave the key.
    pub fingerprint: Option<String>,
    /// The key itself (to write a backup under it).
    pub key: Option<FieldKey>,
}

impl FieldKeys {
    /// The state of a store encrypted under `key`.
    pub fn under(key: &FieldKey) -> FieldKeys {
        FieldKeys {
            encrypted: true,
            cipher: Some(Arc::new(Cipher::new(key))),
            fingerprint: Some(key.fingerprint()),
            key: Some(key.clone()),
        }
    }

    /// The cipher to write with: none for a plain store; an encrypted store without its key
    /// refuses to write sensitive fields in clear ([`EncryptionError::KeyRequired`]).
    pub fn for_write(&self) -> Result<Option<Arc<Cipher>>> {
        match (&self.cipher, self.encrypted) {
            (Some(c), _) => Ok(Some(c.clone())),
            (None, false) => Ok(None),
            (None, true) => Err(Error::Encryption(EncryptionError::KeyRequired)),
        }
    }

    /// The blind-index digest of a lookup value (the value itself in a plain store).
    pub fn digest(&self, value: &str) -> Result<String> {
        Ok(match self.for_write()? {
            Some(c) => c.digest(value),
            None => value.to_owned(),
        })
    }

    /// The stored form of a sensitive value: encrypted under `context` when the store
    /// encrypts, the value itself otherwise.
    pub fn seal(&self, context: &str, plain: &str) -> Result<String> {
        match self.for_write()? {
            Some(c) => c.encrypt(context, plain),
            None => Ok(plain.to_owned()),
        }
    }

    /// The plain form of a stored value written by [`FieldKeys::seal`] (a plain value passes
    /// through; an encrypted one without the key is [`EncryptionError::KeyRequired`]).
    pub fn open(&self, context: &str, stored: &str) -> Result<String> {
        if !Cipher::is_encrypted(stored) {
            return Ok(stored.to_owned());
        }
        let c = self.cipher.as_deref().ok_or(Error::Encryption(EncryptionError::KeyRequired))?;
        c.decrypt(context, stored)
    }
}

/// A contact's match key as stored: under the blind-index key when contacts are encrypted
/// (a bare hash of a phone number could be reversed by trying every number).
///
/// ```
/// use guanxi_sql::{Cipher, FieldKey, seal_match_key};
/// let c = Cipher::new(&FieldKey::from_bytes(&[1; 32]).unwrap());
/// assert_eq!(seal_match_key(42, None), 42);
/// assert_ne!(seal_match_key(42, Some(&c)), 42);
/// ```
pub fn seal_match_key(key: u64, cipher: Option<&Cipher>) -> i64 {
    let key = match cipher {
        Some(c) => u64::from_str_radix(&c.digest(&format!("match key {key}"))[..16], 16).unwrap_or(key),
        None => key,
    };
    key as i64
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
