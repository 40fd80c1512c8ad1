//! Representation selection (RFC 9110 §3.2, §8.4, §8.8.3): the response the client asked for,
//! built from the full identity representation the tier returned.
//!
//! ```text
//! origin body → cache (identity, full) → projection (?fields) → ETag for the mask
//!   → content coding (Accept-Encoding; encoded variants cached) → 304/412 check
//!   → byte range (206/416, `range`) → response
//! ```
//! Only the full identity representation goes through the RFC 9111 tier. Projection runs per
//! request on the cached body; encoded variants are cached beside it under a key that holds the
//! base ETag, the canonical mask and the coding, so a repeated hit costs no compression.
//!
//! [`Selection::decide`] is the pure decision (which mask, which coding, why `?fields=` was
//! skipped, whether the result may be cached as a shared variant); [`represent`] applies it.

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use xxhash_rust::xxh3::xxh3_64;

use crate::cache_control::CacheControl;
use crate::conditional::{self, EntityTag, Precondition, TagList};
use crate::encoding::{self, Coding, Effort, MIN_COMPRESS_SIZE};
use crate::entry::VariantState;
use crate::fields::{self, FieldSelection, MAX_PROJECTED_BODY};
use crate::outcome::Recompression;
use crate::range;
use crate::{Body, CacheEntry, CacheKey, CfCacheStatus, Platform, StoredResponse, WorkerError};

pub mod recode_policy;

/// How long an encoded variant is kept. Its key holds the base ETag, so it is never served for
/// a changed base; this only bounds how long an unused one occupies the store.
pub const VARIANT_KEEP: Duration = Duration::from_secs(600);

/// Says whether `?fields=` was applied: `applied`, or `skipped; reason=...`.
pub const FIELDS_HEADER: &str = "x-edge-fields";

/// What the client asked of the representation.
pub(crate) struct Wanted {
    pub method: Method,
    pub fields: Option<FieldSelection>,
    pub coding: Coding,
    /// The client's request fields, for the preconditions.
    pub conditions: HeaderMap,
    /// Whether variants coded on a miss are recoded in the background.
    pub recompress: bool,
}

/// Why `?fields=` was not applied to a response (the `reason` in [`FIELDS_HEADER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldsSkipped {
    /// Not a 200 JSON document: there is nothing to project.
    NotJson,
    /// The origin forbade transformations (RFC 9111 §5.2.2.6).
    NoTransform,
    /// The origin already coded the body; projecting would mean decoding it.
    ContentEncoded,
    /// Larger than [`MAX_PROJECTED_BODY`]: projection would cost more than it saves.
    BodyTooLarge,
    /// Said it was JSON but did not parse as such.
    InvalidJson,
}

impl FieldsSkipped {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldsSkipped::NotJson => "not-json",
            FieldsSkipped::NoTransform => "no-transform",
            FieldsSkipped::ContentEncoded => "content-encoded",
            FieldsSkipped::BodyTooLarge => "body-too-large",
            FieldsSkipped::InvalidJson => "invalid-json",
        }
    }
}

/// What to do to a 2xx response for one request, decided from its head and body length only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection<'w> {
    /// The mask to project with; `None` sends every field.
    pub mask: Option<&'w FieldSelection>,
    /// Set when the client asked for `?fields=` and it cannot be applied.
    pub fields_skipped: Option<FieldsSkipped>,
    /// The content coding to send.
    pub coding: Coding,
    /// Whether the coding choice depends on Accept-Encoding (so the response must vary on it).
    pub varies_on_coding: bool,
    /// Whether the result may be stored as a variant in the shared cache: only for responses
    /// that the shared tier itself handled (never private bytes or uncacheable passes).
    pub shared_variant: bool,
}

impl<'w> Selection<'w> {
    /// Decides, without touching the body: `cache` is what the tier did (`None` for private
    /// or refused responses).
    pub fn decide(
        response: &Response<Body>,
        fields: Option<&'w FieldSelection>,
        accepted: Coding,
        cache: Option<CfCacheStatus>,
    ) -> Self {
        let headers = response.headers();
        let no_transform = CacheControl::from_headers(headers).has("no-transform");
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let already_encoded = headers.contains_key(header::CONTENT_ENCODING);
        let compressible =
            !no_transform && !already_encoded && encoding::is_compressible(content_type);
        let fields_skipped = fields.and_then(|_| {
            if response.status() != StatusCode::OK || !fields::is_json(content_type) {
                Some(FieldsSkipped::NotJson)
            } else if no_transform {
                Some(FieldsSkipped::NoTransform)
            } else if already_encoded {
                Some(FieldsSkipped::ContentEncoded)
            } else if response.body().len() > MAX_PROJECTED_BODY {
                Some(FieldsSkipped::BodyTooLarge)
            } else {
                None
            }
        });
        // The coding depends on Accept-Encoding only for a body the edge would code.
        let codable = compressible && response.body().len() >= MIN_COMPRESS_SIZE;
        let coding = if codable { accepted } else { Coding::Identity };
        let shared_variant = matches!(
            cache,
            Some(
                CfCacheStatus::Hit
                    | CfCacheStatus::Miss
                    | CfCacheStatus::Expired
                    | CfCacheStatus::Stale
                    | CfCacheStatus::Updating
                    | CfCacheStatus::Revalidated
            )
        );
        Selection {
            mask: fields.filter(|_| fields_skipped.is_none()),
            fields_skipped,
            coding,
            varies_on_coding: codable,
            shared_variant,
        }
    }

    /// Whether the full identity representation is sent as it is.
    pub fn is_identity(&self) -> bool {
        self.mask.is_none() && self.coding == Coding::Identity
    }

    /// The shared-cache key of the encoded variant, when one may be cached: it names the base
    /// entity tag, so a changed base never serves an old variant.
    fn variant_key(&self, key: &CacheKey, base_etag: Option<&EntityTag>) -> Option<String> {
        match (base_etag, self.coding, self.shared_variant) {
            (Some(etag), Coding::Brotli | Coding::Zstd | Coding::Gzip, true) => Some(format!(
                "{key}\u{1}etag={etag};fields={};coding={}",
                self.mask.map(ToString::to_string).unwrap_or_default(),
                self.coding.suffix()
            )),
            _ => None,
        }
    }
}

/// What representation selection adds to the outcome besides the response.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// A coded variant this hit found still at its miss-time level, to recode in the
    /// background.
    pub recompression: Option<Recompression>,
    /// Bytes the served variant saved over its miss-time coding.
    pub recompression_saved: u64,
}

/// Turns the full identity response from the tier into the one the client asked for, then
/// evaluates the client's preconditions against it (RFC 9110 §13.2.2).
///
/// A coded variant exists at two levels over its life: coded fast on the miss, then replaced
/// by the background's best (`"…-br2"`, then `"…-br11"`). Both are current representations of
/// the resource for this request, each with its own strong validator (RFC 9110 §8.8.3: the
/// bytes differ, so the tags do). A client whose `If-None-Match` names the other level gets a
/// 304 carrying the tag it holds: the server selects the representation the client already
/// has (§13.1.2 evaluates the condition against the selected representation, and which of
/// several current representations to select is the server's choice, §3.2), so the 304 is
/// truthful and saves the transfer. Its cache then freshens that stored response
/// (RFC 9111 §4.3.4), whose bytes decode to the same content.
pub(crate) async fn represent<P: Platform>(
    p: &P,
    key: &CacheKey,
    cache: Option<CfCacheStatus>,
    response: Response<Body>,
    wanted: &Wanted,
) -> (Response<Body>, Extras) {
    let mut extras = Extras::default();
    let mut coding = Coding::Identity;
    let mut response = if response.status().is_success() {
        let selection = Selection::decide(&response, wanted.fields.as_ref(), wanted.coding, cache);
        coding = selection.coding;
        apply(p, key, &selection, wanted.recompress, response, &mut extras).await
    } else {
        response
    };
    if response.status().is_success() {
        let current = response
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(EntityTag::parse);
        let held = current
            .as_ref()
            .and_then(|current| held_other_level(&wanted.conditions, current, coding));
        let selected = held.as_ref().or(current.as_ref());
        let now = p.now();
        let modified = conditional::date(response.headers(), &header::LAST_MODIFIED, now);
        match conditional::evaluate(&wanted.method, &wanted.conditions, selected, modified, now) {
            Precondition::Proceed => {}
            Precondition::NotModified => {
                if let Some(held) = &held {
                    set_etag(response.headers_mut(), held);
                }
                return (conditional::not_modified(&response), extras);
            }
            Precondition::Failed => {
                let mut failed = WorkerError::PreconditionFailed.to_response();
                if let Some(etag) = response.headers().get(header::ETAG) {
                    failed.headers_mut().insert(header::ETAG, etag.clone());
                }
                return (failed, extras);
            }
        }
        // §13.2.2: a Range is evaluated after the other preconditions, on the bytes selected.
        let answer = range::answer(&wanted.method, &wanted.conditions, &response, now);
        response = range::apply(answer, response);
    }
    let length = response.body().len();
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if wanted.method == Method::HEAD {
        response.body_mut().clear();
    }
    (response, extras)
}

/// The tag in the request's `If-None-Match` that names another level of the same coded
/// variant as `current`: the same tag up to its last `-`, then the same coding's suffix and a
/// level (`"x-br2"` beside `"x-br11"`). Only our derived tags have that shape after the base.
fn held_other_level(request: &HeaderMap, current: &EntityTag, coding: Coding) -> Option<EntityTag> {
    if coding == Coding::Identity {
        return None;
    }
    let (base, _) = current.tag.rsplit_once('-')?;
    let TagList::Tags(tags) = TagList::from_headers(request, &header::IF_NONE_MATCH)? else {
        return None;
    };
    tags.into_iter().find(|held| {
        held.weak == current.weak
            && held.tag != current.tag
            && held
                .tag
                .rsplit_once('-')
                .and_then(|(held_base, level)| {
                    (held_base == base).then_some(level.strip_prefix(coding.suffix())?)
                })
                .is_some_and(|level| !level.is_empty() && level.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The fields an encoded variant carries over the base response's.
fn variant_fields() -> [header::HeaderName; 3] {
    [
        header::ETAG,
        header::CONTENT_ENCODING,
        header::HeaderName::from_static(FIELDS_HEADER),
    ]
}

/// Applies a [`Selection`] to a 2xx response: projected, tagged and encoded, from the shared
/// variant cache when it holds the result already.
async fn apply<P: Platform>(
    p: &P,
    key: &CacheKey,
    selection: &Selection<'_>,
    recompress: bool,
    mut response: Response<Body>,
    extras: &mut Extras,
) -> Response<Body> {
    if selection.varies_on_coding {
        crate::vary::append_vary(response.headers_mut(), "accept-encoding");
    }
    let base_etag = match response.headers().get(header::ETAG) {
        Some(value) => value.to_str().ok().and_then(EntityTag::parse),
        None => {
            let generated = EntityTag::of_content(response.body());
            set_etag(response.headers_mut(), &generated);
            Some(generated)
        }
    };
    if let Some(reason) = selection.fields_skipped {
        set_fields_header(response.headers_mut(), reason);
    }
    if selection.is_identity() {
        return response;
    }

    // A cached encoded variant answers without projecting or compressing.
    let variant_key = selection.variant_key(key, base_etag.as_ref());
    if let Some(variant_key) = &variant_key {
        if let Some(CacheEntry::Response(mut variant)) = p.cache_get(variant_key).await {
            for name in variant_fields() {
                response.headers_mut().remove(&name);
                for value in variant.headers.get_all(&name) {
                    response.headers_mut().append(name.clone(), value.clone());
                }
            }
            let state = variant.variant;
            let miss_length = state.map_or(0, |s| s.miss_length);
            extras.recompression_saved = miss_length.saturating_sub(variant.body.len() as u64);
            let identity = std::mem::replace(response.body_mut(), variant.body.clone());
            let Some(mut state) = state.filter(|s| recompress && s.recode) else {
                return response;
            };
            // The variant is used again, so its bytes will be paid again: when the recoding
            // policy says the uses repay the coder's CPU, the background gets the uncoded
            // bytes (this response is not coded); until then the variant remembers its use.
            let now = p.now();
            match recode_policy::on_use(state.used_at, now) {
                recode_policy::OnUse::Recode => {
                    let uncoded = match selection.mask {
                        Some(mask) => mask.apply(&identity).ok().map(Body::from),
                        None => Some(identity),
                    };
                    extras.recompression = uncoded.map(|body| Recompression {
                        key: variant_key.clone(),
                        body,
                    });
                }
                recode_policy::OnUse::Remember => {
                    state.used_at = Some(now);
                    variant.variant = Some(state);
                    p.cache_put(variant_key, CacheEntry::Response(variant), VARIANT_KEEP)
                        .await;
                }
            }
            return response;
        }
    }

    let mut etag = base_etag;
    if let Some(mask) = selection.mask {
        match mask.apply(response.body()) {
            Ok(projected) => {
                *response.body_mut() = projected.into();
                let canonical = mask.to_string();
                etag = etag.map(|e| e.derive(&format!("f{:016x}", xxh3_64(canonical.as_bytes()))));
                if let Ok(value) = HeaderValue::from_str("applied") {
                    response.headers_mut().insert(FIELDS_HEADER, value);
                }
            }
            Err(_) => set_fields_header(response.headers_mut(), FieldsSkipped::InvalidJson),
        }
    }
    let coding = selection.coding;
    let mut recode = false;
    if coding != Coding::Identity {
        let level = coding.level(response.body().len(), Effort::Miss);
        let encoded = p.encode(coding, level, response.body()).await;
        let plain = std::mem::replace(response.body_mut(), encoded);
        recode = recompress
            && recode_policy::recodes(coding)
            && coding.level(plain.len(), Effort::Background) != level;
        if let Some(token) = coding.token() {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
        }
        etag = etag.map(|e| e.derive(&coding.tag_suffix(level)));
    }
    if let Some(etag) = &etag {
        set_etag(response.headers_mut(), etag);
    }
    if let Some(variant_key) = variant_key {
        let mut headers = HeaderMap::new();
        for name in variant_fields() {
            for value in response.headers().get_all(&name) {
                headers.append(name.clone(), value.clone());
            }
        }
        let variant = StoredResponse {
            status: response.status(),
            headers,
            body: response.body().clone(),
            vary_request_headers: HeaderMap::new(),
            response_time: p.now(),
            lifetime: None,
            record: None,
            variant: Some(VariantState {
                miss_length: response.body().len() as u64,
                recode,
                used_at: None,
            }),
        };
        p.cache_put(&variant_key, CacheEntry::Response(variant), VARIANT_KEEP)
            .await;
    }
    response
}

/// The background half of "fast on the miss, best in the cache": recodes a variant stored on
/// a miss at the coding's best level for its size ([`Effort::Background`]) and stores it in
/// the same slot with its own entity tag. Does nothing when the slot is gone (purged,
/// evicted) or already recoded.
pub async fn recompress<P: Platform>(p: &P, task: Recompression) {
    let Some(CacheEntry::Response(mut variant)) = p.cache_get(&task.key).await else {
        return;
    };
    let coded = match recode_plan(&variant, task.body.len()) {
        Some((coding, level)) => Some(p.encode(coding, level, &task.body).await),
        None => None,
    };
    if recode(&mut variant, &task.body, |_, _, _| {
        coded.unwrap_or_default()
    }) {
        p.cache_put(&task.key, CacheEntry::Response(variant), VARIANT_KEEP)
            .await;
    }
}

/// What [`recode`] would code a variant marked for recoding at: its coding and the best level
/// for `uncoded_len` bytes. `None` when it is not marked (done already), when its tag is not
/// one of ours, or when it is at that level already. A host can start the (pure, slow) coding
/// early from this and hand the result to `recode` later.
pub fn recode_plan(variant: &StoredResponse, uncoded_len: usize) -> Option<(Coding, u32)> {
    plan(variant, uncoded_len).map(|(coding, level, _)| (coding, level))
}

fn plan(variant: &StoredResponse, uncoded_len: usize) -> Option<(Coding, u32, EntityTag)> {
    if !variant.variant.is_some_and(|s| s.recode) {
        return None;
    }
    let coding = variant
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .and_then(Coding::from_token)
        .unwrap_or(Coding::Identity);
    let current = variant
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .and_then(EntityTag::parse)?;
    let level = coding.level(uncoded_len, Effort::Background);
    // Our variants' tags are the base tag, `-`, then the coding and level (`"x-br2"`).
    let (base, _) = current.tag.rsplit_once('-')?;
    let best = EntityTag {
        weak: current.weak,
        tag: format!("{base}-{}", coding.tag_suffix(level)),
    };
    (coding != Coding::Identity && best != current).then_some((coding, level, best))
}

/// Recodes one stored variant from its uncoded bytes with `encode` (the coder, or a host's
/// memo of it: the result is a pure function of coding, bytes and level). Returns `false`
/// when the variant is not marked for recoding (done already). When the best level is not
/// smaller, keeps the bytes and only clears the mark, so later hits stop asking.
pub fn recode(
    variant: &mut StoredResponse,
    uncoded: &[u8],
    encode: impl FnOnce(Coding, &[u8], u32) -> Body,
) -> bool {
    let plan = plan(variant, uncoded.len());
    match &mut variant.variant {
        Some(state) if state.recode => state.recode = false,
        _ => return false,
    }
    if let Some((coding, level, best)) = plan {
        let encoded = encode(coding, uncoded, level);
        if encoded.len() < variant.body.len() {
            variant.body = encoded;
            set_etag(&mut variant.headers, &best);
        }
    }
    true
}

fn set_etag(headers: &mut HeaderMap, etag: &EntityTag) {
    if let Ok(value) = HeaderValue::from_str(&etag.to_string()) {
        headers.insert(header::ETAG, value);
    }
}

fn set_fields_header(headers: &mut HeaderMap, reason: FieldsSkipped) {
    if let Ok(value) = HeaderValue::from_str(&format!("skipped; reason={}", reason.as_str())) {
        headers.insert(FIELDS_HEADER, value);
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
