//! Encrypted values: `C1 63 65 01`, the key id's length (one byte) and the key id, a
//! 24-byte random nonce, then the value sealed with XChaCha20-Poly1305. The header and the
//! store key are authenticated with the value, so a value moved to another key, or whose key
//! id was changed, fails to open like a tampered one.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// The first bytes of an encrypted value.
pub(super) const MAGIC: [u8; 4] = super::ENCRYPTED;
const NONCE_LEN: usize = 24;

/// One encryption key and the id stored with the values it seals.
pub(super) struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl Key {
    /// The key `id` from its 64 hexadecimal digits; the errors never show them.
    pub(super) fn from_hex(id: &str, hex_digits: &str) -> std::result::Result<Self, String> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "key id {id:?} must be 1 to 64 printable ASCII characters without spaces"
            ));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex_digits.trim(), bytes.as_mut_slice()).map_err(|_| {
            format!(
                "key {id:?} must be 32 bytes written as 64 hexadecimal digits (for example \
                 the output of `openssl rand -hex 32`)"
            )
        })?;
        Ok(Key {
            id: id.to_owned(),
            cipher: XChaCha20Poly1305::new(bytes.as_slice().into()),
        })
    }
}

impl Key {
    /// The id stored with the values this key seals.
    pub(super) fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The keys of a store: the first seals, any opens.
#[derive(Debug)]
pub(super) struct Encryption {
    pub(super) keys: Vec<Key>,
    /// Whether a value stored without encryption is read as it is (while a store moves to
    /// encryption) instead of refused.
    pub(super) allow_plaintext: bool,
}

impl Encryption {
    /// `value`, stored under `key`, sealed with the first key.
    pub(super) fn seal(&self, key: &str, value: &[u8]) -> Result<Vec<u8>> {
        let sealing = &self.keys[0];
        let mut out = header(&sealing.id);
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| {
            Error::new(
                ErrorKind::Serialize,
                format!("no random nonce to encrypt the value with: {e}"),
            )
        })?;
        let aad = [&out[..], key.as_bytes()].concat();
        let sealed = sealing
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::new(ErrorKind::Serialize, "the value could not be encrypted"))?;
        out.reserve_exact(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The value in `stored` (which starts with [`MAGIC`]), read under `key`.
    pub(super) fn open(&self, key: &str, stored: &[u8]) -> Result<Vec<u8>> {
        let corrupt = |why: String| {
            Error::new(
                ErrorKind::Deserialize,
                format!("the stored value cannot be decrypted: {why}"),
            )
        };
        let rest = &stored[MAGIC.len()..];
        let Some((&id_len, rest)) = rest.split_first() else {
            return Err(corrupt("its header is cut short".to_owned()));
        };
        let Some((id, rest)) = rest.split_at_checked(usize::from(id_len)) else {
            return Err(corrupt("its header is cut short".to_owned()));
        };
        let Some((nonce, sealed)) = rest.split_first_chunk::<NONCE_LEN>() else {
            return Err(corrupt("its header is cut short".to_owned()));
        };
        let id = String::from_utf8_lossy(id);
        let opening = self.keys.iter().find(|k| k.id == id).ok_or_else(|| {
            corrupt(format!(
                "it was encrypted with key {id:?}, which is not among this store's keys ({})",
                self.key_ids()
            ))
        })?;
        let aad = [
            &stored[..MAGIC.len() + 1 + usize::from(id_len)],
            key.as_bytes(),
        ]
        .concat();
        opening
            .cipher
            .decrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                corrupt(format!(
                    "it fails authentication with key {id:?} (tampered with, written under \
                     another key, or with another key of the same id)"
                ))
            })
    }

    /// The error for a value stored without encryption in a store that requires it.
    pub(super) fn plaintext_refused(&self) -> Error {
        Error::new(
            ErrorKind::Deserialize,
            "the stored value is not encrypted, and this store reads only encrypted values \
             (set `encrypt.allow_plaintext = true` while moving a store to encryption)",
        )
    }

    fn key_ids(&self) -> String {
        self.keys
            .iter()
            .map(|k| format!("{:?}", k.id))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The header of a value sealed with the key `id`.
fn header(id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 1 + id.len());
    out.extend_from_slice(&MAGIC);
    out.push(u8::try_from(id.len()).expect("key ids are at most 64 bytes"));
    out.extend_from_slice(id.as_bytes());
    out
}
