//! A cache slot (`CacheEntry`) as bytes, so it can live in the body of a Cache API response.
//!
//! Why a body and not the stored response itself: the Cache API keys only by URL, re-applies
//! its own HTTP semantics to what it stores (conditional matches, header rewrites) and has no
//! place for our Vary rules, verified tokens or the RFC 9111 `response_time`. So the adapter
//! stores an opaque `application/octet-stream` body under a synthetic URL and keeps the cache
//! semantics in the core. Decoding never panics: a corrupt or foreign body is a typed error,
//! which the adapter treats as a miss.
//!
//! Layout (all integers big-endian): magic `EWC1`, a tag byte, then per tag
//! - `R` response: status u16, response time (ms since the epoch) u64, headers, Vary request
//!   headers, body;
//! - `S` response with a lifetime the cache chose (cache policy: jitter, negative caching):
//!   as `R` with, after the response time, the lifetime in seconds u64 and a negative byte;
//! - `E` response with optional parts: status u16, response time u64, a flags byte (1: a
//!   lifetime the cache chose, as in `S`; 2: the freshness the tier figured when it stored
//!   the copy: lifetime, initial age, stale-while-revalidate and stale-if-error in seconds,
//!   u64 each, a forbids-stale byte and its Vary fields (count u32, then strings); 4: a coded variant's state: miss length u64, recode
//!   byte, last use in ms u64 with u64::MAX for none), the parts flagged, in that order, then
//!   headers, Vary request headers and body as in `R` (what this adapter writes);
//! - `V` Vary rule: count u32, then that many strings;
//! - `T` verified token: a presence byte and the `typ` string, then the claims string;
//!
//! where strings and the body are a u32 length and bytes, and a header map is a u32 count of
//! (name, value) pairs in order (repeated names kept).

use std::time::{Duration, SystemTime};

use edge_worker::entry::{LocalLifetime, VariantState};
use edge_worker::freshness::FreshnessRecord;
use edge_worker::vary::{VaryRule, MAX_VARY_FIELDS};
use edge_worker::{CacheEntry, StoredResponse, VerifiedToken};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

const MAGIC: &[u8; 4] = b"EWC1";
/// The Cache API refuses bodies above 512 MiB; our core never stores anything near that, so a
/// length above this is corruption, not data.
const MAX_LEN: usize = 64 << 20;

/// Why bytes from the cache are not an entry this adapter wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not an edge-worker cache entry (bad magic)")]
    Magic,
    #[error("unknown entry tag {0:#04x}")]
    Tag(u8),
    #[error("entry truncated")]
    Truncated,
    #[error("length {0} exceeds the limit")]
    TooLong(usize),
    #[error("invalid status code {0}")]
    Status(u16),
    #[error("invalid header field")]
    Header,
    #[error("invalid UTF-8 in a string field")]
    Utf8,
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Serialises `entry`.
pub fn encode(entry: &CacheEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + entry_size_hint(entry));
    out.extend_from_slice(MAGIC);
    match entry {
        CacheEntry::Response(stored) => {
            out.push(b'E');
            out.extend_from_slice(&stored.status.as_u16().to_be_bytes());
            let millis = stored
                .response_time
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0);
            out.extend_from_slice(&millis.to_be_bytes());
            out.push(
                u8::from(stored.lifetime.is_some())
                    | (u8::from(stored.record.is_some()) << 1)
                    | (u8::from(stored.variant.is_some()) << 2),
            );
            if let Some(lifetime) = stored.lifetime {
                out.extend_from_slice(&lifetime.secs.to_be_bytes());
                out.push(u8::from(lifetime.negative));
            }
            if let Some(record) = &stored.record {
                for secs in [
                    record.lifetime.as_secs(),
                    record.initial_age.as_secs(),
                    record.stale_while_revalidate,
                    record.stale_if_error,
                ] {
                    out.extend_from_slice(&secs.to_be_bytes());
                }
                out.push(u8::from(record.forbids_stale));
                put_len(&mut out, record.vary.len());
                for field in &record.vary {
                    put_bytes(&mut out, field.as_bytes());
                }
            }
            if let Some(state) = stored.variant {
                out.extend_from_slice(&state.miss_length.to_be_bytes());
                out.push(u8::from(state.recode));
                let used_at = state.used_at.map_or(u64::MAX, |t| {
                    t.duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX - 1))
                });
                out.extend_from_slice(&used_at.to_be_bytes());
            }
            put_headers(&mut out, &stored.headers);
            put_headers(&mut out, &stored.vary_request_headers);
            put_bytes(&mut out, &stored.body);
        }
        CacheEntry::VaryRule(rule) => {
            let list = rule.to_strings();
            out.push(b'V');
            put_len(&mut out, list.len());
            for field in &list {
                put_bytes(&mut out, field.as_bytes());
            }
        }
        CacheEntry::VerifiedToken(token) => {
            out.push(b'T');
            match &token.typ {
                Some(typ) => {
                    out.push(1);
                    put_bytes(&mut out, typ.as_bytes());
                }
                None => out.push(0),
            }
            put_bytes(&mut out, token.claims.as_bytes());
        }
    }
    out
}

/// Parses what [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<CacheEntry, DecodeError> {
    let mut r = Reader { rest: bytes };
    if r.take(4)? != MAGIC {
        return Err(DecodeError::Magic);
    }
    let entry = match r.u8()? {
        tag @ (b'R' | b'S' | b'E') => {
            let code = r.u16()?;
            let status = StatusCode::from_u16(code).map_err(|_| DecodeError::Status(code))?;
            let response_time = SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_millis(r.u64()?))
                .ok_or(DecodeError::Truncated)?;
            let flags = match tag {
                b'R' => 0,
                b'S' => 1,
                _ => r.u8()?,
            };
            let lifetime = match flags & 1 {
                0 => None,
                _ => Some(LocalLifetime {
                    secs: r.u64()?,
                    negative: r.u8()? != 0,
                }),
            };
            let record = match flags & 2 {
                0 => None,
                _ => Some(FreshnessRecord {
                    lifetime: Duration::from_secs(r.u64()?),
                    initial_age: Duration::from_secs(r.u64()?),
                    stale_while_revalidate: r.u64()?,
                    stale_if_error: r.u64()?,
                    forbids_stale: r.u8()? != 0,
                    vary: {
                        let count = r.len()?;
                        if count > MAX_VARY_FIELDS {
                            return Err(DecodeError::TooLong(count));
                        }
                        (0..count).map(|_| r.string()).collect::<Result<_, _>>()?
                    },
                }),
            };
            let variant = match flags & 4 {
                0 => None,
                _ => Some(VariantState {
                    miss_length: r.u64()?,
                    recode: r.u8()? != 0,
                    used_at: match r.u64()? {
                        u64::MAX => None,
                        ms => Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
                    },
                }),
            };
            let headers = r.headers()?;
            let vary_request_headers = r.headers()?;
            let body = edge_worker::Body::from(r.bytes()?.to_vec());
            CacheEntry::Response(StoredResponse {
                status,
                headers,
                body,
                vary_request_headers,
                response_time,
                lifetime,
                record,
                variant,
            })
        }
        b'V' => {
            let count = r.len()?;
            // The generation is one more string than the fields.
            let mut list = Vec::with_capacity(count.min(MAX_VARY_FIELDS + 1));
            for _ in 0..count {
                list.push(r.string()?);
            }
            CacheEntry::VaryRule(VaryRule::from_strings(list))
        }
        b'T' => {
            let typ = match r.u8()? {
                0 => None,
                _ => Some(r.string()?),
            };
            let claims = r.string()?;
            CacheEntry::VerifiedToken(VerifiedToken { typ, claims })
        }
        tag => return Err(DecodeError::Tag(tag)),
    };
    match r.rest.len() {
        0 => Ok(entry),
        n => Err(DecodeError::Trailing(n)),
    }
}

fn entry_size_hint(entry: &CacheEntry) -> usize {
    match entry {
        CacheEntry::Response(stored) => stored.size() + 8 * stored.headers.len(),
        CacheEntry::VaryRule(rule) => rule.fields().iter().map(|f| f.len() + 4).sum::<usize>() + 24,
        CacheEntry::VerifiedToken(token) => token.claims.len() + 16,
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Lengths come from values in memory far below 4 GiB (header maps, bodies the core holds).
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    put_len(out, headers.len());
    for (name, value) in headers {
        put_bytes(out, name.as_str().as_bytes());
        put_bytes(out, value.as_bytes());
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let len = usize::try_from(u32::from_be_bytes(self.array()?)).unwrap_or(usize::MAX);
        if len > MAX_LEN {
            return Err(DecodeError::TooLong(len));
        }
        Ok(len)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.len()?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| DecodeError::Utf8)
    }

    fn headers(&mut self) -> Result<HeaderMap, DecodeError> {
        let count = self.len()?;
        // Every pair takes at least 8 bytes: a count larger than the rest is corruption, and
        // checking it first keeps a forged count from reserving memory.
        if count > self.rest.len() / 8 {
            return Err(DecodeError::Truncated);
        }
        let mut headers = HeaderMap::with_capacity(count);
        for _ in 0..count {
            let name = HeaderName::from_bytes(self.bytes()?).map_err(|_| DecodeError::Header)?;
            let value = HeaderValue::from_bytes(self.bytes()?).map_err(|_| DecodeError::Header)?;
            headers.append(name, value);
        }
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response() -> CacheEntry {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("set-thing", HeaderValue::from_static("a"));
        headers.append("set-thing", HeaderValue::from_static("b"));
        headers.insert("x-bytes", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let mut vary = HeaderMap::new();
        vary.insert("accept-language", HeaderValue::from_static("de"));
        CacheEntry::Response(StoredResponse {
            status: StatusCode::NOT_FOUND,
            headers,
            body: b"{\"id\":1}\x00\xff".to_vec().into(),
            vary_request_headers: vary,
            response_time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_600_123),
            lifetime: None,
            record: None,
            variant: None,
        })
    }

    /// A response kept under a lifetime the cache chose.
    fn negative() -> CacheEntry {
        let CacheEntry::Response(mut stored) = response() else {
            unreachable!()
        };
        stored.lifetime = Some(LocalLifetime {
            secs: 10,
            negative: true,
        });
        CacheEntry::Response(stored)
    }

    /// A response stored with the freshness its tier figured.
    fn sealed(entry: CacheEntry) -> CacheEntry {
        let CacheEntry::Response(mut stored) = entry else {
            unreachable!()
        };
        stored.record = Some(FreshnessRecord {
            lifetime: Duration::from_secs(300),
            initial_age: Duration::from_secs(12),
            stale_while_revalidate: 60,
            stale_if_error: 0,
            forbids_stale: true,
            vary: vec!["accept-encoding".into(), "x-a".into()],
        });
        CacheEntry::Response(stored)
    }

    /// A coded variant with its state.
    fn coded(used: bool) -> CacheEntry {
        let CacheEntry::Response(mut stored) = response() else {
            unreachable!()
        };
        stored.variant = Some(VariantState {
            miss_length: 1234,
            recode: used,
            used_at: used
                .then(|| SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_601_000)),
        });
        CacheEntry::Response(stored)
    }

    fn samples() -> Vec<CacheEntry> {
        vec![
            response(),
            negative(),
            sealed(response()),
            sealed(negative()),
            coded(true),
            coded(false),
            CacheEntry::VaryRule(VaryRule::from_strings(vec![
                "accept-encoding".into(),
                "x-a".into(),
            ])),
            CacheEntry::VaryRule(VaryRule::from_strings(Vec::new())),
            CacheEntry::VerifiedToken(VerifiedToken {
                typ: Some("at+jwt".into()),
                claims: r#"{"sub":"ü"}"#.into(),
            }),
            CacheEntry::VerifiedToken(VerifiedToken {
                typ: None,
                claims: "{}".into(),
            }),
        ]
    }

    #[test]
    fn every_kind_of_entry_round_trips_exactly() {
        for entry in samples() {
            assert_eq!(decode(&encode(&entry)), Ok(entry));
        }
    }

    #[test]
    fn repeated_header_fields_keep_their_order() {
        let CacheEntry::Response(stored) = decode(&encode(&response())).unwrap() else {
            panic!("a response entry");
        };
        let values: Vec<_> = stored.headers.get_all("set-thing").iter().collect();
        assert_eq!(values, ["a", "b"]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for entry in samples() {
            let bytes = encode(&entry);
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err(), "cut at {cut} of {entry:?}");
            }
        }
    }

    #[test]
    fn corrupt_bytes_are_refused_with_a_reason() {
        assert_eq!(decode(b"HTTP/1.1 200 OK"), Err(DecodeError::Magic));
        assert_eq!(decode(b"EWC1X"), Err(DecodeError::Tag(b'X')));
        let mut bytes = encode(&response());
        bytes.push(0);
        assert_eq!(decode(&bytes), Err(DecodeError::Trailing(1)));
        // Status 1000 is not a status code.
        let mut bytes = encode(&response());
        bytes[5..7].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(decode(&bytes), Err(DecodeError::Status(1000)));
        // A forged header count cannot make the decoder reserve gigabytes.
        let mut bytes = b"EWC1R".to_vec();
        bytes.extend_from_slice(&200u16.to_be_bytes());
        bytes.extend_from_slice(&0u64.to_be_bytes());
        bytes.extend_from_slice(&(MAX_LEN as u32).to_be_bytes());
        assert_eq!(decode(&bytes), Err(DecodeError::Truncated));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A deterministic xorshift stream: cheap coverage of the decoder's error paths.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let base = encode(&response());
        for _ in 0..5_000 {
            let mut bytes = base.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state as usize) % bytes.len();
                bytes[at] = (state >> 32) as u8;
            }
            let _ = decode(&bytes);
        }
    }
}
