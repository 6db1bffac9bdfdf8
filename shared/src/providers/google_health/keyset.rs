//! Google's webhook signing keys: a Tink public keyset (JSON) whose `EcdsaPublicKey` protos
//! are read by hand, and the cache that fetches it lazily and again on an unknown key id, at
//! most once a minute, remembering for a while the ids such a fetch did not find.

use super::{GoogleHealthSettings, SetupError, parse_url};
use crate::clock::Clock;
use crate::ports::WebhookError;
use crate::providers::fetch_limits::{
    Expiring, KEY_FETCH_CONNECT_TIMEOUT, KEY_FETCH_TIMEOUT, REFETCH_INTERVAL, turn_to_fetch,
};
use crate::providers::http::{HttpFailure, Redirects, build_client, read_limited};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, Signature, VerifyingKey};
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Keys rotate about monthly; a long-lived process still drops a withdrawn key within a day.
const MAX_KEYSET_AGE: SignedDuration = SignedDuration::from_hours(24);
/// A key id that a fetch made for it did not find is refused without a fetch for this long:
/// Google publishes a key before signing with it, and retries what was refused for days.
const UNKNOWN_KEY_MEMORY: SignedDuration = SignedDuration::from_mins(10);
/// At most this many unknown key ids are remembered (made-up ones can be endless).
const MAX_UNKNOWN_KEYS: usize = 1024;
/// A keyset is a few hundred bytes; anything near this is not one.
const MAX_KEYSET_BYTES: usize = 64 * 1024;

const TYPE_URL: &str = "type.googleapis.com/google.crypto.tink.EcdsaPublicKey";
// Values of Tink's `HashType`, `EllipticCurveType` and `EcdsaSignatureEncoding` enums.
const HASH_SHA256: u64 = 3;
const CURVE_NIST_P256: u64 = 2;
const ENCODING_IEEE_P1363: u64 = 1;
const ENCODING_DER: u64 = 2;

/// Why a keyset or one of its keys could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(super) struct KeysetError(&'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignatureEncoding {
    Der,
    IeeeP1363,
}

/// One ECDSA P-256 SHA-256 verifying key.
#[derive(Debug, Clone)]
pub(super) struct PublicKey {
    key: VerifyingKey,
    encoding: SignatureEncoding,
}

impl PublicKey {
    /// Whether `signature` (without Tink's prefix) signs exactly `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self.encoding {
            SignatureEncoding::Der => {
                DerSignature::from_bytes(signature).is_ok_and(|s| self.key.verify(message, &s).is_ok())
            }
            SignatureEncoding::IeeeP1363 => {
                Signature::from_slice(signature).is_ok_and(|s| self.key.verify(message, &s).is_ok())
            }
        }
    }
}

/// The usable (enabled, TINK-prefixed, P-256 SHA-256) keys of a keyset, by key id.
#[derive(Debug, Clone, Default)]
pub(super) struct Keyset {
    keys: HashMap<u32, PublicKey>,
}

impl Keyset {
    /// Reads Tink's JSON keyset format. Keys that are disabled or of another kind are left
    /// out; a keyset with no usable key at all is an error.
    pub fn from_json(json: &[u8]) -> Result<Self, KeysetError> {
        let keyset: TinkKeyset = serde_json::from_slice(json).map_err(|_| KeysetError("not a Tink JSON keyset"))?;
        let mut keys = HashMap::new();
        for entry in keyset.key {
            let Ok(entry) = serde_json::from_value::<TinkKey>(entry) else {
                tracing::warn!("skipping a webhook key of an unexpected shape");
                continue;
            };
            let key_id = entry.key_id;
            match usable_key(entry) {
                Ok(Some(key)) => {
                    keys.insert(key_id, key);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(key_id, error = %e, "skipping an unreadable webhook key"),
            }
        }
        if keys.is_empty() {
            return Err(KeysetError("the keyset has no enabled ECDSA P-256 key"));
        }
        Ok(Self { keys })
    }

    pub fn get(&self, key_id: u32) -> Option<&PublicKey> {
        self.keys.get(&key_id)
    }
}

/// `Ok(None)` for a key that is fine but not for us (disabled, another prefix or type).
fn usable_key(entry: TinkKey) -> Result<Option<PublicKey>, KeysetError> {
    let enabled = entry.status.as_deref() == Some("ENABLED");
    // Only the TINK prefix (0x01 + key id) is what the signature header carries.
    let tink_prefixed = entry.output_prefix_type.as_deref().is_none_or(|p| p == "TINK");
    let ecdsa = entry.key_data.type_url.as_deref().is_none_or(|t| t == TYPE_URL);
    if !(enabled && tink_prefixed && ecdsa) {
        return Ok(None);
    }
    let proto = STANDARD.decode(entry.key_data.value.trim()).map_err(|_| KeysetError("key value is not base64"))?;
    parse_ecdsa_public_key(&proto).map(Some)
}

/// `EcdsaPublicKey { uint32 version = 1; EcdsaParams params = 2; bytes x = 3; bytes y = 4; }`
/// with `EcdsaParams { HashType hash_type = 1; EllipticCurveType curve = 2;
/// EcdsaSignatureEncoding encoding = 3; }`.
fn parse_ecdsa_public_key(proto: &[u8]) -> Result<PublicKey, KeysetError> {
    let (mut version, mut params, mut x, mut y) = (0, None, None, None);
    let mut fields = ProtoReader::new(proto);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Field::Varint(v)) => version = v,
            (2, Field::Bytes(b)) => params = Some(b),
            (3, Field::Bytes(b)) => x = Some(b),
            (4, Field::Bytes(b)) => y = Some(b),
            _ => {} // unknown fields are allowed by proto3
        }
    }
    if version != 0 {
        return Err(KeysetError("unsupported EcdsaPublicKey version"));
    }
    let (mut hash, mut curve, mut encoding) = (0, 0, 0);
    let mut fields = ProtoReader::new(params.ok_or(KeysetError("key has no parameters"))?);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Field::Varint(v)) => hash = v,
            (2, Field::Varint(v)) => curve = v,
            (3, Field::Varint(v)) => encoding = v,
            _ => {}
        }
    }
    if hash != HASH_SHA256 || curve != CURVE_NIST_P256 {
        return Err(KeysetError("key is not ECDSA P-256 with SHA-256"));
    }
    let encoding = match encoding {
        ENCODING_DER => SignatureEncoding::Der,
        ENCODING_IEEE_P1363 => SignatureEncoding::IeeeP1363,
        _ => return Err(KeysetError("key has an unknown signature encoding")),
    };
    let mut point = [0u8; 65];
    point[0] = 0x04; // SEC1 uncompressed
    point[1..33].copy_from_slice(&coordinate(x.ok_or(KeysetError("key has no x"))?)?);
    point[33..].copy_from_slice(&coordinate(y.ok_or(KeysetError("key has no y"))?)?);
    let key = VerifyingKey::from_sec1_bytes(&point).map_err(|_| KeysetError("key is not a point on P-256"))?;
    Ok(PublicKey { key, encoding })
}

/// Tink stores coordinates as big-endian two's complement, often with a leading zero byte:
/// strip it and left-pad to the curve's 32 bytes.
fn coordinate(raw: &[u8]) -> Result<[u8; 32], KeysetError> {
    let first_nonzero = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    let digits = &raw[first_nonzero..];
    if digits.len() > 32 {
        return Err(KeysetError("key coordinate is longer than 32 bytes"));
    }
    let mut out = [0u8; 32];
    out[32 - digits.len()..].copy_from_slice(digits);
    Ok(out)
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Just enough protobuf wire format to walk a message's fields.
struct ProtoReader<'a> {
    rest: &'a [u8],
}

impl<'a> ProtoReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn next_field(&mut self) -> Result<Option<(u64, Field<'a>)>, KeysetError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = match tag & 0x7 {
            0 => Field::Varint(self.varint()?),
            1 => self.skip(8).map(|_| Field::Fixed)?,
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| KeysetError("protobuf length overflows"))?;
                Field::Bytes(self.skip(len)?)
            }
            5 => self.skip(4).map(|_| Field::Fixed)?,
            _ => return Err(KeysetError("protobuf has an unsupported wire type")),
        };
        Ok(Some((tag >> 3, field)))
    }

    fn varint(&mut self) -> Result<u64, KeysetError> {
        let mut value = 0u64;
        for (i, byte) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(KeysetError("protobuf varint is truncated"))
    }

    fn skip(&mut self, len: usize) -> Result<&'a [u8], KeysetError> {
        if len > self.rest.len() {
            return Err(KeysetError("protobuf field is truncated"));
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }
}

#[derive(Deserialize)]
struct TinkKeyset {
    #[serde(default)]
    key: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TinkKey {
    key_data: TinkKeyData,
    #[serde(default)]
    status: Option<String>,
    key_id: u32,
    #[serde(default)]
    output_prefix_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TinkKeyData {
    #[serde(default)]
    type_url: Option<String>,
    value: String,
}

struct CachedKeys {
    keyset: Arc<Keyset>,
    /// `None` for keys given at construction: they never go stale.
    fetched_at: Option<Timestamp>,
}

impl CachedKeys {
    fn is_stale(&self, now: Timestamp) -> bool {
        self.fetched_at.is_some_and(|at| now.duration_since(at) > MAX_KEYSET_AGE)
    }
}

/// What the cache knows, behind one short lock that is never held across a fetch.
struct KeyState {
    keys: Option<CachedKeys>,
    /// When this instance last asked for the keyset, whatever came of it.
    last_fetch: Option<Timestamp>,
    /// Key ids a fetch was made for and did not find: refused without asking again until
    /// they expire, so one id sent over and over costs one fetch per `UNKNOWN_KEY_MEMORY`.
    unknown: Expiring<u32>,
}

/// What the cache says about a key id without fetching.
enum Lookup {
    Found(PublicKey),
    Refused(WebhookError),
    /// Not known, and a fetch is allowed.
    Fetch,
}

/// The keyset shared by every request and what a fetch needs: the published keyset's URL
/// and an HTTP client of its own with short timeouts. One request at a time fetches; the
/// others do not queue behind it for longer than a moment.
pub(super) struct KeyCache {
    url: Url,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    state: Mutex<KeyState>,
    fetching: tokio::sync::Mutex<()>,
}

impl KeyCache {
    /// An empty cache for the keyset at `keyset_url`, fetched with the settings' timeouts
    /// capped at `KEY_FETCH_CONNECT_TIMEOUT` and `KEY_FETCH_TIMEOUT`: a verification must
    /// answer well within the webhook function's own timeout.
    pub fn new(settings: &GoogleHealthSettings, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        let url = parse_url("keyset_url", &settings.keyset_url)?;
        let connect = settings.connect_timeout.min(KEY_FETCH_CONNECT_TIMEOUT);
        let total = settings.request_timeout.min(KEY_FETCH_TIMEOUT);
        let http =
            build_client(connect, total, Redirects::Follow).map_err(|e| SetupError::HttpClient(e.to_string()))?;
        let state = KeyState { keys: None, last_fetch: None, unknown: Expiring::new(MAX_UNKNOWN_KEYS) };
        Ok(Self { url, http, clock, state: Mutex::new(state), fetching: tokio::sync::Mutex::new(()) })
    }

    /// Starts with `keyset`, which never goes stale; an unknown key id still fetches.
    pub fn preload(&mut self, keyset: Keyset) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        state.keys = Some(CachedKeys { keyset: Arc::new(keyset), fetched_at: None });
    }

    /// The key that signed a notification: from the cache, else from a fetch of the published
    /// keyset. An id the cache does not have is refused without a fetch when the keyset was
    /// asked for less than a minute ago (by the injected clock), when a fetch made for this
    /// id in the last `UNKNOWN_KEY_MEMORY` did not find it, or when another request's fetch
    /// does not land within `MAX_WAIT_FOR_FETCH`.
    pub async fn signing_key(&self, key_id: u32) -> Result<PublicKey, WebhookError> {
        match self.lookup(key_id) {
            Lookup::Found(key) => return Ok(key),
            // With no fetch running, waiting would change nothing.
            Lookup::Refused(error) if self.fetching.try_lock().is_ok() => return Err(error),
            Lookup::Refused(_) | Lookup::Fetch => {}
        }
        let Some(_turn) = turn_to_fetch(&self.fetching).await else {
            return Err(self.refusal_while_fetching());
        };
        // The fetch this request waited for (if any) may have brought the key, or ruled it out.
        match self.lookup(key_id) {
            Lookup::Found(key) => return Ok(key),
            Lookup::Refused(error) => return Err(error),
            Lookup::Fetch => {}
        }
        self.state().last_fetch = Some(self.clock.now());
        let keyset = Arc::new(self.fetch_keyset().await?);
        let now = self.clock.now();
        let mut state = self.state();
        state.keys = Some(CachedKeys { keyset: keyset.clone(), fetched_at: Some(now) });
        match keyset.get(key_id) {
            Some(key) => Ok(key.clone()),
            None => {
                state.unknown.remember(key_id, now + UNKNOWN_KEY_MEMORY, now);
                Err(WebhookError::UnknownKey)
            }
        }
    }

    /// Answers from what is cached, and says whether a fetch may be tried.
    fn lookup(&self, key_id: u32) -> Lookup {
        let now = self.clock.now();
        let state = self.state();
        let fresh = state.keys.as_ref().filter(|keys| !keys.is_stale(now));
        if let Some(key) = fresh.and_then(|keys| keys.keyset.get(key_id)) {
            return Lookup::Found(key.clone());
        }
        let have_fresh = fresh.is_some();
        if have_fresh && state.unknown.contains(&key_id, now) {
            return Lookup::Refused(WebhookError::UnknownKey);
        }
        // An id first seen within the minute after a fetch is refused but not remembered:
        // its key may have been published since, and the next fetch may find it.
        let may_fetch = state.last_fetch.is_none_or(|at| now.duration_since(at) >= REFETCH_INTERVAL);
        if may_fetch {
            return Lookup::Fetch;
        }
        Lookup::Refused(if have_fresh {
            WebhookError::UnknownKey
        } else {
            unavailable("the last fetch failed less than a minute ago")
        })
    }

    /// Another request's fetch is still running: an unknown id is refused now rather than
    /// queued (Google retries), and with no usable keyset nothing can be verified yet.
    fn refusal_while_fetching(&self) -> WebhookError {
        let now = self.clock.now();
        if self.state().keys.as_ref().is_some_and(|keys| !keys.is_stale(now)) {
            WebhookError::UnknownKey
        } else {
            unavailable("another request is fetching them")
        }
    }

    fn state(&self) -> MutexGuard<'_, KeyState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn fetch_keyset(&self) -> Result<Keyset, WebhookError> {
        // Google is alive: a refused connection is one more passing failure to connect.
        let failure = |f: HttpFailure| unavailable(f.refused_as_connect().describe());
        let response = self.http.get(self.url.clone()).send().await.map_err(|e| failure(HttpFailure::of(&e)))?;
        if !response.status().is_success() {
            return Err(unavailable(&format!("HTTP {}", response.status().as_u16())));
        }
        let body = read_limited(response, MAX_KEYSET_BYTES).await.map_err(failure)?;
        Keyset::from_json(&body).map_err(|e| unavailable(&e.to_string()))
    }
}

/// The webhook signing keys cannot be had, for a reason a retry may overcome.
fn unavailable(why: &str) -> WebhookError {
    WebhookError::Unavailable(format!("the webhook signing keys could not be fetched: {why}"))
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    const FIXTURE_KEY_ID: u32 = 1837264519;

    fn fixture_key_value() -> String {
        let keyset: Value = serde_json::from_str(&fixture("webhook_keyset.json")).unwrap();
        keyset["key"][0]["keyData"]["value"].as_str().unwrap().to_owned()
    }

    fn keyset_with(value: &str, status: &str, prefix: &str) -> String {
        serde_json::json!({
            "primaryKeyId": 7,
            "key": [{
                "keyData": {"typeUrl": TYPE_URL, "value": value, "keyMaterialType": "ASYMMETRIC_PUBLIC"},
                "status": status,
                "keyId": 7,
                "outputPrefixType": prefix,
            }]
        })
        .to_string()
    }

    #[test]
    fn the_fixture_keyset_yields_its_one_key_despite_the_leading_zero_bytes() {
        let keyset = Keyset::from_json(fixture("webhook_keyset.json").as_bytes()).unwrap();
        let key = keyset.get(FIXTURE_KEY_ID).expect("the fixture key");
        assert_eq!(key.encoding, SignatureEncoding::Der);
        assert!(keyset.get(FIXTURE_KEY_ID + 1).is_none());
    }

    #[test]
    fn disabled_keys_and_keys_of_other_prefixes_are_not_usable() {
        let value = fixture_key_value();
        assert!(Keyset::from_json(keyset_with(&value, "ENABLED", "TINK").as_bytes()).is_ok());
        let disabled = Keyset::from_json(keyset_with(&value, "DISABLED", "TINK").as_bytes());
        assert_eq!(disabled.unwrap_err(), KeysetError("the keyset has no enabled ECDSA P-256 key"));
        assert!(Keyset::from_json(keyset_with(&value, "ENABLED", "RAW").as_bytes()).is_err());
    }

    #[test]
    fn malformed_keysets_and_key_protos_are_refused_without_panicking() {
        assert!(Keyset::from_json(b"[]").is_err());
        assert!(Keyset::from_json(b"{\"key\": 5}").is_err());
        assert!(Keyset::from_json(keyset_with("%%%", "ENABLED", "TINK").as_bytes()).is_err());
        let proto = STANDARD.decode(fixture_key_value()).unwrap();
        for len in 0..proto.len() {
            assert!(parse_ecdsa_public_key(&proto[..len]).is_err(), "a proto cut at {len} bytes");
        }
        assert!(parse_ecdsa_public_key(&[0xff; 12]).is_err());
    }

    #[test]
    fn unknown_proto_fields_are_skipped() {
        let mut proto = STANDARD.decode(fixture_key_value()).unwrap();
        // field 9 as a varint, field 10 as fixed64, field 11 as fixed32
        proto.extend_from_slice(&[0x48, 0x96, 0x01, 0x51, 0, 0, 0, 0, 0, 0, 0, 0, 0x5d, 0, 0, 0, 0]);
        assert!(parse_ecdsa_public_key(&proto).is_ok());
    }

    #[test]
    fn coordinates_are_stripped_of_sign_bytes_and_left_padded() {
        let mut long = vec![0u8];
        long.extend_from_slice(&[0xab; 32]);
        assert_eq!(coordinate(&long).unwrap(), [0xab; 32]);
        let mut expected = [0u8; 32];
        expected[31] = 5;
        assert_eq!(coordinate(&[5]).unwrap(), expected);
        assert!(coordinate(&[1u8; 33]).is_err());
    }
}
