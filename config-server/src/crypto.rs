//! `{cipher}` values, compatible with Spring Cloud Config's symmetric key.
//!
//! Spring's `Encryptors.text(key, "deadbeef")` derives an AES-256 key with
//! PBKDF2-HMAC-SHA1 (1024 iterations, salt = the hex-decoded salt) and writes
//! `hex(iv || AES-256-CBC(PKCS#7, plaintext))` with a random 16-byte IV.
//! Values encrypted by a Spring server with the same key decrypt here and the
//! other way round.
//!
//! In served environments a value `{cipher}<hex>` is replaced by its
//! plaintext; a value that cannot be decrypted is replaced by the key
//! `invalid.<key>` with the value `<n/a>`, never by the ciphertext.

use aes::Aes256;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use cloud_protocol::config::Environment;
use serde_json::{Map, Value};

/// The prefix that marks an encrypted property value.
pub const CIPHER_PREFIX: &str = "{cipher}";
/// Spring's default salt, hex encoded.
pub const DEFAULT_SALT: &str = "deadbeef";
const ITERATIONS: u32 = 1024;
const IV_LEN: usize = 16;

/// Why a value could not be encrypted or decrypted.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The salt is not hex.
    #[error("salt is not hex")]
    BadSalt,
    /// The cipher text is not hex, too short, or does not decrypt with this key.
    #[error("text not encrypted with this key")]
    Invalid,
}

/// A symmetric encryptor with Spring's `Encryptors.text` format.
#[derive(Clone)]
pub struct TextEncryptor {
    key: [u8; 32],
}

impl std::fmt::Debug for TextEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TextEncryptor { key: <redacted> }")
    }
}

impl TextEncryptor {
    /// Derives the AES key from `password` and a hex `salt` (Spring's default
    /// is [`DEFAULT_SALT`]).
    pub fn new(password: &str, salt_hex: &str) -> Result<Self, CryptoError> {
        let salt = hex::decode(salt_hex).map_err(|_| CryptoError::BadSalt)?;
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password.as_bytes(), &salt, ITERATIONS, &mut key);
        Ok(Self { key })
    }

    /// Encrypts with a fresh random IV; returns lowercase hex.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let iv: [u8; IV_LEN] = rand::random();
        self.encrypt_with_iv(plaintext, iv)
    }

    fn encrypt_with_iv(&self, plaintext: &str, iv: [u8; IV_LEN]) -> String {
        let ct = cbc::Encryptor::<Aes256>::new(&self.key.into(), &iv.into())
            .encrypt_padded_vec::<Pkcs7>(plaintext.as_bytes());
        let mut out = Vec::with_capacity(IV_LEN + ct.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        hex::encode(out)
    }

    /// Decrypts hex produced by [`TextEncryptor::encrypt`] or by Spring.
    pub fn decrypt(&self, hex_text: &str) -> Result<String, CryptoError> {
        let bytes = hex::decode(hex_text.trim()).map_err(|_| CryptoError::Invalid)?;
        if bytes.len() < IV_LEN * 2 || bytes.len() % IV_LEN != 0 {
            return Err(CryptoError::Invalid);
        }
        let (iv, ct) = bytes.split_at(IV_LEN);
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| CryptoError::Invalid)?;
        let pt = cbc::Decryptor::<Aes256>::new(&self.key.into(), &iv.into())
            .decrypt_padded_vec::<Pkcs7>(ct)
            .map_err(|_| CryptoError::Invalid)?;
        String::from_utf8(pt).map_err(|_| CryptoError::Invalid)
    }
}

/// Strips Spring's optional `{key:name}` / `{secret:...}` prefixes that may
/// stand between `{cipher}` and the hex text.
fn strip_prefixes(mut s: &str) -> &str {
    while s.starts_with('{') {
        match s.find('}') {
            Some(end) => s = &s[end + 1..],
            None => break,
        }
    }
    s
}

/// Decrypts every `{cipher}` value of `env` in place. Values that cannot be
/// decrypted (or any, when there is no key) become `invalid.<key>: "<n/a>"`.
/// Returns the keys that failed, for the log.
pub fn decrypt_environment(env: &mut Environment, enc: Option<&TextEncryptor>) -> Vec<String> {
    let mut failed = Vec::new();
    for source in &mut env.property_sources {
        if !source
            .source
            .values()
            .any(|v| v.as_str().is_some_and(|s| s.starts_with(CIPHER_PREFIX)))
        {
            continue;
        }
        let old = std::mem::take(&mut source.source);
        let mut new = Map::with_capacity(old.len());
        for (key, value) in old {
            let Some(cipher) = value.as_str().and_then(|s| s.strip_prefix(CIPHER_PREFIX)) else {
                new.insert(key, value);
                continue;
            };
            match enc.map(|e| e.decrypt(strip_prefixes(cipher))) {
                Some(Ok(plain)) => {
                    new.insert(key, Value::String(plain));
                }
                _ => {
                    new.insert(format!("invalid.{key}"), Value::String("<n/a>".into()));
                    failed.push(key);
                }
            }
        }
        source.source = new;
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloud_protocol::config::PropertySource;
    use serde_json::json;

    #[test]
    fn key_derivation_matches_pbkdf2_sha1_reference() {
        // RFC 6070 test vector 2 (2 iterations) checks the primitive we use.
        let mut out = [0u8; 20];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(b"password", b"salt", 2, &mut out);
        assert_eq!(hex::encode(out), "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
    }

    #[test]
    fn known_ciphertext_layout_is_iv_then_cbc_blocks() {
        let enc = TextEncryptor::new("secret", DEFAULT_SALT).unwrap();
        let hex_text = enc.encrypt_with_iv("hello", [7u8; 16]);
        // Expected value computed independently with Python's
        // hashlib.pbkdf2_hmac('sha1', b'secret', bytes.fromhex('deadbeef'),
        // 1024, 32) and `openssl enc -aes-256-cbc` with IV 07..07.
        assert_eq!(
            hex_text,
            format!("{}7d20ba587d0c3f6272e7d48333e7c0c8", "07".repeat(16))
        );
        assert_eq!(enc.decrypt(&hex_text).unwrap(), "hello");
    }

    #[test]
    fn decrypts_a_value_encrypted_by_the_spring_cli() {
        // Printed by `spring encrypt my_value --key my_key` (Spring Boot CLI
        // with spring-cloud-cli), as published in a public tutorial.
        let enc = TextEncryptor::new("my_key", DEFAULT_SALT).unwrap();
        let spring = "c93cb36ce1d09d7d62dffd156ef742faaa56f97f135ebd05e90355f80290ce6b";
        assert_eq!(enc.decrypt(spring).unwrap(), "my_value");
    }

    #[test]
    fn round_trips_with_random_iv_and_rejects_other_keys() {
        let a = TextEncryptor::new("secret", DEFAULT_SALT).unwrap();
        let b = TextEncryptor::new("other", DEFAULT_SALT).unwrap();
        let c1 = a.encrypt("mysecret-ÿ");
        let c2 = a.encrypt("mysecret-ÿ");
        assert_ne!(c1, c2, "a fresh IV each time");
        assert_eq!(a.decrypt(&c1).unwrap(), "mysecret-ÿ");
        assert!(b.decrypt(&c1).is_err() || b.decrypt(&c1).unwrap() != "mysecret-ÿ");
        assert!(a.decrypt("zz").is_err());
        assert!(a.decrypt("00").is_err());
    }

    #[test]
    fn environment_values_are_decrypted_or_marked_invalid() {
        let enc = TextEncryptor::new("k", DEFAULT_SALT).unwrap();
        let good = format!("{{cipher}}{}", enc.encrypt("pw"));
        let prefixed = format!("{{cipher}}{{key:default}}{}", enc.encrypt("pw2"));
        let mut env = Environment::new("foo", vec![]);
        let mut src = Map::new();
        src.insert("a".into(), json!(good));
        src.insert("b".into(), json!("{cipher}deadbeef"));
        src.insert("c".into(), json!(1));
        src.insert("d".into(), json!(prefixed));
        env.property_sources.push(PropertySource::new("s", src));
        let failed = decrypt_environment(&mut env, Some(&enc));
        let s = &env.property_sources[0].source;
        assert_eq!(s["a"], json!("pw"));
        assert_eq!(s["invalid.b"], json!("<n/a>"));
        assert!(!s.contains_key("b"));
        assert_eq!(s["c"], json!(1));
        assert_eq!(s["d"], json!("pw2"));
        assert_eq!(failed, ["b"]);
        let keys: Vec<_> = s.keys().cloned().collect();
        assert_eq!(keys, ["a", "invalid.b", "c", "d"], "order is kept");
    }

    #[test]
    fn without_a_key_cipher_values_are_never_served() {
        let mut env = Environment::new("foo", vec![]);
        let mut src = Map::new();
        src.insert("a".into(), json!("{cipher}abcd"));
        env.property_sources.push(PropertySource::new("s", src));
        decrypt_environment(&mut env, None);
        assert_eq!(env.property_sources[0].source["invalid.a"], json!("<n/a>"));
    }
}
