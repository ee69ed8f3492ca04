//! Authenticated ledger entries (ARCHITECTURE.md, principle 9, "No confused deputy"): every entry
//! firedrill writes carries an HMAC-SHA256 code, made with a key only firedrill's own
//! ServiceAccount can read, over the ledger's identity (run, drill, step number) and the entry's
//! undo record. A replay acts only on entries whose code verifies, so whoever can write a
//! ConfigMap in firedrill's namespace cannot make firedrill use its rights.
//!
//! What is covered is what a revert acts on: the undo record, exactly as parsed (so a field
//! changed, added or reordered in the stored text either changes the record or changes nothing
//! a revert does), and where it sits (another run's ledger, another step). The entry's `state`
//! and `note` are not covered: they change as a revert proceeds, and at worst they can make an
//! entry look closed, which leaves an object as it is (never changes one).

use ring::hmac;
#[cfg(test)]
use serde_json::Value;

use crate::undo::UndoRecord;

/// Length of a key, in bytes.
pub const KEY_LEN: usize = 32;

/// Domain separation: a code made for anything else (or another version of this encoding) is
/// never a valid entry code.
const CONTEXT: &[u8] = b"firedrill.io/ledger-entry-v2\n";

/// The ledger key: 32 random bytes. Its `Debug` never shows them.
#[derive(Clone)]
pub struct Key {
    hmac: hmac::Key,
    /// The first bytes of SHA-256 over the key, to say which key a ledger was checked with
    /// without saying anything about the key.
    id: String,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

/// Why a key could not be made or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the ledger key has {found} bytes, not {KEY_LEN}; replace it (see runbooks/ledger-unverified.md, \"Rotating the key\")")]
    Length { found: usize },
    #[error("no random bytes for a new ledger key from the operating system")]
    Random,
}

impl Key {
    /// A new random key.
    pub fn generate() -> Result<(Key, [u8; KEY_LEN]), KeyError> {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; KEY_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| KeyError::Random)?;
        Ok((Key::from_bytes(&bytes)?, bytes))
    }

    /// The key from its stored bytes (exactly [`KEY_LEN`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Key, KeyError> {
        if bytes.len() != KEY_LEN {
            return Err(KeyError::Length { found: bytes.len() });
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        Ok(Key {
            hmac: hmac::Key::new(hmac::HMAC_SHA256, bytes),
            id: hex(&digest.as_ref()[..4]),
        })
    }

    /// Eight hex digits that tell keys apart (in reports, never secret).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The code of an entry: hex of HMAC-SHA256 over the ledger's identity and the undo record.
    pub fn seal(&self, run: &str, drill: &str, seq: usize, undo: &UndoRecord) -> String {
        self.ledger(run, drill).seal(seq, undo)
    }

    /// Checks an entry's code, in constant time.
    pub fn verify(
        &self,
        run: &str,
        drill: &str,
        seq: usize,
        undo: &UndoRecord,
        code: Option<&str>,
    ) -> Result<(), Unverified> {
        self.ledger(run, drill).verify(seq, undo, code)
    }

    /// Seals and verifies the entries of one ledger: its identity is taken in once, not per
    /// entry (a revert verifies thousands).
    pub fn ledger(&self, run: &str, drill: &str) -> LedgerSeal {
        let mut prefix = hmac::Context::with_key(&self.hmac);
        prefix.update(CONTEXT);
        for part in [run, drill] {
            prefix.update(&(part.len() as u64).to_be_bytes());
            prefix.update(part.as_bytes());
        }
        LedgerSeal { prefix }
    }
}

/// The key with one ledger's identity taken in: [`Key::ledger`].
#[derive(Clone)]
pub struct LedgerSeal {
    prefix: hmac::Context,
}

impl LedgerSeal {
    fn tag(&self, seq: usize, undo: &UndoRecord) -> hmac::Tag {
        let mut context = self.prefix.clone();
        context.update(&(seq as u64).to_be_bytes());
        // Straight to JSON, not through a `Value`: struct fields serialize in declaration order
        // and JSON objects in key order (serde_json without `preserve_order`; a test below holds
        // this canonical), so a record encodes alike wherever it is written or read. It always
        // serializes; were it not to, the code would only fail to verify.
        let mut record = Vec::with_capacity(160);
        let _ = serde_json::to_writer(&mut record, undo);
        context.update(&record);
        context.sign()
    }

    /// The code of entry `seq`.
    pub fn seal(&self, seq: usize, undo: &UndoRecord) -> String {
        hex(self.tag(seq, undo).as_ref())
    }

    /// Checks entry `seq`'s code, in constant time.
    pub fn verify(
        &self,
        seq: usize,
        undo: &UndoRecord,
        code: Option<&str>,
    ) -> Result<(), Unverified> {
        let code = code.ok_or(Unverified::Missing)?;
        let bytes = unhex(code).ok_or(Unverified::Malformed)?;
        let tag = self.tag(seq, undo);
        if equal_in_constant_time(tag.as_ref(), &bytes) {
            Ok(())
        } else {
            Err(Unverified::Mismatch)
        }
    }
}

/// Whether two codes are equal, looking at every byte whatever the first difference (ring's own
/// comparison is deprecated as public API; its `hmac::verify` cannot start from a prefix).
fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// Why an entry does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unverified {
    /// The entry carries no code.
    Missing,
    /// The code is not 64 hex digits.
    Malformed,
    /// The code was not made with this key for this record at this place: another key, another
    /// run's or another step's entry, or a record changed since it was written.
    Mismatch,
}

impl std::fmt::Display for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unverified::Missing => "it carries no authentication code (`mac`)",
            Unverified::Malformed => "its authentication code (`mac`) is not 64 hex digits",
            Unverified::Mismatch => {
                "its authentication code does not match: it was made with another key, for another run's ledger or another step, or the record was changed after firedrill wrote it"
            }
        })
    }
}

// What is authenticated, in order: the context, the run and the drill (each length-prefixed,
// so no two identities encode alike), the step number (8 bytes, big-endian), and the undo
// record as canonical JSON.

/// JSON with object keys sorted at every level, whatever order a map keeps them in: what the
/// encoding above must equal.
#[cfg(test)]
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(&Value::String(k.clone()), out);
                out.push(b':');
                canonical(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The 32 bytes of a code written as 64 lowercase hex digits (what [`LedgerSeal::seal`] writes).
///
/// By table, not by branches: the digits of a code are random, so a branch per digit was
/// mispredicted half the time and decoding cost a third of verifying an entry
/// (runner/benches/stop.rs, profiled with `perf`).
fn unhex(text: &str) -> Option<[u8; 32]> {
    /// A digit's value, or `NOT_A_DIGIT` (0x10: above every digit, so an OR finds it).
    const NOT_A_DIGIT: u8 = 0x10;
    const VALUES: [u8; 256] = {
        let mut values = [NOT_A_DIGIT; 256];
        let mut c = 0;
        while c < 10 {
            values[b'0' as usize + c] = c as u8;
            c += 1;
        }
        let mut c = 0;
        while c < 6 {
            values[b'a' as usize + c] = 10 + c as u8;
            c += 1;
        }
        values
    };
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut seen = 0u8;
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (high, low) = (VALUES[usize::from(pair[0])], VALUES[usize::from(pair[1])]);
        seen |= high | low;
        *byte = high << 4 | low;
    }
    (seen & NOT_A_DIGIT == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ObjectKind, ObjectRef};

    fn key(byte: u8) -> Key {
        Key::from_bytes(&[byte; KEY_LEN]).unwrap()
    }

    fn scale(replicas: i64) -> UndoRecord {
        UndoRecord::RestoreReplicas {
            target: ObjectRef::namespaced(ObjectKind::Deployment, "shop", "api"),
            prior: replicas,
            applied: 0,
            hpa: None,
        }
    }

    /// The code is HMAC-SHA256 over the encoding documented above, built here by hand, and a
    /// fixed vector: ledgers already written keep verifying, and the encoding cannot drift
    /// unnoticed.
    #[test]
    fn codes_are_hmac_sha256_of_the_documented_encoding() {
        let bytes = [7u8; KEY_LEN];
        let record = scale(2);
        let mut message = CONTEXT.to_vec();
        for part in ["run-1", "checkout-drill"] {
            message.extend_from_slice(&(part.len() as u64).to_be_bytes());
            message.extend_from_slice(part.as_bytes());
        }
        message.extend_from_slice(&3u64.to_be_bytes());
        message.extend_from_slice(&serde_json::to_vec(&record).unwrap());
        let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes);
        let expected = hex(ring::hmac::sign(&ring_key, &message).as_ref());
        let code = Key::from_bytes(&bytes)
            .unwrap()
            .seal("run-1", "checkout-drill", 3, &record);
        assert_eq!(code, expected);
        assert_eq!(
            code,
            "0a4cd55dc191bc26ab36315d96db89b409c2ededd3f6f4405c82569e10fce413"
        );
    }

    /// Codes are compared byte for byte: two differences never cancel out.
    #[test]
    fn codes_differing_anywhere_are_not_equal() {
        assert!(equal_in_constant_time(&[1, 2, 3], &[1, 2, 3]));
        assert!(!equal_in_constant_time(&[1, 2], &[2, 1]));
        assert!(!equal_in_constant_time(&[7, 7, 0], &[0, 7, 7]));
        assert!(!equal_in_constant_time(&[1, 2], &[1, 2, 3]));
    }

    /// A key in a log or a panic message shows only its id, never its bytes.
    #[test]
    fn a_key_prints_its_id_only() {
        let k = key(0xab);
        let shown = format!("{k:?}");
        assert_eq!(shown, format!("Key({})", k.id()));
        assert!(!k.id().is_empty());
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
    }

    #[test]
    fn a_code_verifies_only_for_its_key_run_drill_step_and_record() {
        let k = key(1);
        let code = k.seal("run-1", "drill", 3, &scale(3));
        assert_eq!(code.len(), 64);
        assert_eq!(
            k.verify("run-1", "drill", 3, &scale(3), Some(&code)),
            Ok(())
        );
        let mismatch = Err(Unverified::Mismatch);
        assert_eq!(
            key(2).verify("run-1", "drill", 3, &scale(3), Some(&code)),
            mismatch
        );
        assert_eq!(
            k.verify("run-2", "drill", 3, &scale(3), Some(&code)),
            mismatch
        );
        assert_eq!(
            k.verify("run-1", "other", 3, &scale(3), Some(&code)),
            mismatch
        );
        assert_eq!(
            k.verify("run-1", "drill", 4, &scale(3), Some(&code)),
            mismatch
        );
        assert_eq!(
            k.verify("run-1", "drill", 3, &scale(30), Some(&code)),
            mismatch
        );
        // The identity's parts cannot slide into each other.
        let slid = k.seal("run-1d", "rill", 3, &scale(3));
        assert_ne!(slid, code);
        assert_eq!(
            k.verify("run-1", "drill", 3, &scale(3), None),
            Err(Unverified::Missing)
        );
        assert_eq!(
            k.verify("run-1", "drill", 3, &scale(3), Some(&code[..63])),
            Err(Unverified::Malformed)
        );
        assert_eq!(
            k.verify("run-1", "drill", 3, &scale(3), Some(&code.to_uppercase())),
            Err(Unverified::Malformed),
        );
    }

    #[test]
    fn codes_decode_exactly_as_written_and_nothing_else_decodes() {
        let bytes: Vec<u8> = (0..=255).collect();
        for chunk in bytes.chunks(32) {
            assert_eq!(unhex(&hex(chunk)).map(Vec::from), Some(chunk.to_vec()));
        }
        let good = hex(&[0xa5; 32]);
        for c in (0..=255u8).filter(|c| !c.is_ascii_digit() && !(b'a'..=b'f').contains(c)) {
            for at in [0, 1, 63] {
                let mut text = good.clone().into_bytes();
                text[at] = c;
                let text = String::from_utf8_lossy(&text).into_owned();
                assert_eq!(unhex(&text), None, "{c:#x} at {at}");
            }
        }
    }

    #[test]
    fn the_encoding_does_not_depend_on_key_order() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"d":[1,{"y":2,"x":1}],"c":"s"}}"#).unwrap();
        let mut out = Vec::new();
        canonical(&a, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"c":"s","d":[1,{"x":1,"y":2}]},"b":1}"#
        );
    }

    #[test]
    fn records_encode_canonically_even_with_json_inside() {
        let records = [
            scale(3),
            UndoRecord::External {
                system: "route53".into(),
                record: serde_json::from_str(
                    r#"{"zone":"Z","target":{"type":"A","name":"api","set_identifier":"p"},"prior":{"weight":100,"alias":null}}"#,
                )
                .unwrap(),
            },
            UndoRecord::RestoreField {
                target: ObjectRef::namespaced(ObjectKind::Deployment, "shop", "api"),
                path: "/spec/template/metadata/labels".into(),
                prior: Some(serde_json::json!({"b": "2", "a": "1"})),
                applied: None,
            },
        ];
        for record in records {
            let direct = serde_json::to_vec(&record).unwrap();
            let value = serde_json::to_value(&record).unwrap();
            let mut sorted = Vec::new();
            canonical(&value, &mut sorted);
            // Same members; the record's own fields in declaration order, JSON inside sorted.
            let reread: Value = serde_json::from_slice(&direct).unwrap();
            assert_eq!(reread, value);
            let inner = |v: &Value| {
                v.get("record")
                    .or_else(|| v.get("prior"))
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            let mut inner_sorted = Vec::new();
            canonical(&inner(&value), &mut inner_sorted);
            assert_eq!(
                serde_json::to_vec(&inner(&reread)).unwrap(),
                inner_sorted,
                "{record:?}"
            );
        }
    }

    #[test]
    fn keys_are_32_bytes_random_and_never_printed() {
        assert_eq!(
            Key::from_bytes(&[0; 31]).unwrap_err(),
            KeyError::Length { found: 31 }
        );
        let (a, bytes) = Key::generate().unwrap();
        let (b, _) = Key::generate().unwrap();
        assert_ne!(a.id(), b.id());
        assert_eq!(Key::from_bytes(&bytes).unwrap().id(), a.id());
        assert!(!format!("{a:?}").contains(&hex(&bytes)));
    }
}
