//! Content codings: `Accept-Encoding` negotiation (RFC 9110 §12.5.3) and compression with
//! `brotli` and `flate2` (gzip).

use std::io::Write;

use http::header;
use http::HeaderMap;

/// The codings this worker produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Coding {
    Brotli,
    Zstd,
    Gzip,
    Identity,
}

/// Bodies smaller than this are sent as they are: the framing would eat the saving.
pub const MIN_COMPRESS_SIZE: usize = 256;
/// Most `Accept-Encoding` members we read.
const MAX_MEMBERS: usize = 32;

/// When a body is coded, which decides how hard the coder works.
///
/// A coded variant is cached, so its bytes are paid on every hit while its compression is
/// paid once. The miss codes fast, because the client waits for it; the stored variant is
/// then replaced in the background by the best coding the budget allows
/// (`representation::recompress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// On the miss, while the client waits: no slower than gzip-6 on the same body.
    Miss,
    /// In the background, once per variant: the smallest output the size's CPU budget
    /// allows (see `background_brotli`).
    Background,
}

/// Brotli quality on the miss, by body size: the highest whose speed stays at least gzip-6's
/// on the catalogue's JSON with a margin for noise (`QUALITY_TABLE=1 cargo bench -p
/// edge-worker --bench representation`, BENCHMARKS.md "Fast on the miss, best in the cache"):
/// below 16 KiB brotli's set-up dominates and only qualities 1–3 beat gzip-6 (1 KiB: q2
/// 11.7 µs, q4 40 µs, gzip-6 28 µs); from 16 KiB quality 4 is 1.5–2.7× faster than gzip-6 (and
/// 5 % smaller at 1 MiB). Quality 5 is smaller still but only 5–20 % faster than gzip-6 at
/// 1 MiB, within this machine's noise, so it is not used.
fn miss_brotli(len: usize) -> u32 {
    if len < MISS_BROTLI_4_FROM {
        2
    } else {
        4
    }
}
const MISS_BROTLI_4_FROM: usize = 16 * 1024;

/// Brotli quality in the background, by body size: the lowest that keeps the cached variant
/// at least 15 % smaller than gzip-6 on the catalogue's JSON, which bounds the CPU per
/// variant (natively: q11 ≤ 35 ms up to 32 KiB; q10 45 ms at 100 KiB, 128 ms at 256 KiB,
/// 280–520 ms at 512–768 KiB; q9 84–123 ms at 1 MiB). Quality 10 falls short at 32 KiB
/// (14.6 %), quality 9 from 64 to 768 KiB (7–14.5 %): below 1 MiB only brotli's optimal
/// parsing (q10–11) beats gzip-6 by 15 %; from 1 MiB the large window does it at quality 9
/// (17.5 %).
fn background_brotli(len: usize) -> u32 {
    if len <= BROTLI_11_UP_TO {
        11
    } else if len < BROTLI_9_FROM {
        10
    } else {
        9
    }
}
/// The largest body recoded at brotli 11 (34 ms natively at this size).
pub const BROTLI_11_UP_TO: usize = 32 * 1024;
/// From here brotli 9's large window suffices; below, quality 10 (up to ~0.6 s natively).
const BROTLI_9_FROM: usize = 1024 * 1024;
/// gzip on the miss: zlib's and nginx's default, the usual trade-off.
const MISS_GZIP: u32 = 6;
/// gzip in the background: the most zlib offers. Same format, so any client benefits.
const BACKGROUND_GZIP: u32 = 9;
/// zstd level (RFC 8878): `ruzstd`'s one level, `Fastest`, about zstd's level 1.
const ZSTD_LEVEL: u32 = 1;

/// Brotli window (log2 bytes), 4 MiB. Measured: smaller windows give the same output, and
/// below 17 they switch brotli to hashers that cost ~800 µs to set up even for 1 KiB.
const BROTLI_WINDOW: u32 = 22;

impl Coding {
    /// The `Content-Encoding` token; `None` for identity.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Coding::Brotli => Some("br"),
            Coding::Zstd => Some("zstd"),
            Coding::Gzip => Some("gzip"),
            Coding::Identity => None,
        }
    }

    /// The coding a `Content-Encoding` value names, when it is one of ours.
    pub fn from_token(token: &str) -> Option<Coding> {
        match token.trim().to_ascii_lowercase().as_str() {
            "br" => Some(Coding::Brotli),
            "zstd" => Some(Coding::Zstd),
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "identity" | "" => Some(Coding::Identity),
            _ => None,
        }
    }

    /// Short name used in derived ETags and cache keys.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Zstd => "zst",
            Coding::Gzip => "gz",
            Coding::Identity => "id",
        }
    }

    /// The level (brotli quality, gzip or zstd level) for a body of `len` bytes.
    pub fn level(self, len: usize, effort: Effort) -> u32 {
        match (self, effort) {
            (Coding::Identity, _) => 0,
            (Coding::Brotli, Effort::Miss) => miss_brotli(len),
            (Coding::Brotli, Effort::Background) => background_brotli(len),
            (Coding::Gzip, Effort::Miss) => MISS_GZIP,
            (Coding::Gzip, Effort::Background) => BACKGROUND_GZIP,
            (Coding::Zstd, _) => ZSTD_LEVEL,
        }
    }

    /// The derived-ETag suffix of this coding at `level` (`br4`, `gz9`): each level's bytes
    /// differ, so each gets its own strong validator (RFC 9110 §8.8.3).
    pub fn tag_suffix(self, level: u32) -> String {
        format!("{}{level}", self.suffix())
    }

    /// Codes `body` at the level `effort` picks for it; returns the bytes and the level.
    pub fn encode(self, body: &[u8], effort: Effort) -> (Vec<u8>, u32) {
        let level = self.level(body.len(), effort);
        (self.encode_at(body, level), level)
    }

    /// Codes `body` at an explicit level (clamped to the coder's range).
    pub fn encode_at(self, body: &[u8], level: u32) -> Vec<u8> {
        match self {
            Coding::Identity => body.to_vec(),
            Coding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 3),
                    flate2::Compression::new(level.min(9)),
                );
                // Writing to a Vec cannot fail.
                encoder.write_all(body).expect("in-memory write");
                encoder.finish().expect("in-memory write")
            }
            Coding::Brotli => brotli_at(body, level),
            Coding::Zstd => zstd_at(body, level),
        }
    }
}

/// zstd through `ruzstd`, the pure-Rust coder that builds for both wasm targets (the C
/// library needs a C toolchain for wasm32-unknown-unknown). It implements one level,
/// `Fastest` (about zstd's level 1; its `Default` and above are `unimplemented!()` in 0.9), so
/// the miss and the background code zstd alike and zstd variants are never recoded.
#[cfg(feature = "zstd")]
fn zstd_at(body: &[u8], _level: u32) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(body, ruzstd::encoding::CompressionLevel::Fastest)
}

/// Without the coder, nothing negotiates zstd; identity keeps the function total.
#[cfg(not(feature = "zstd"))]
fn zstd_at(body: &[u8], _level: u32) -> Vec<u8> {
    body.to_vec()
}

/// Whether this build offers zstd.
pub const ZSTD: bool = cfg!(feature = "zstd");

/// The smallest brotli window that holds the whole body, as the C library's one-shot
/// `BrotliEncoderCompress` picks it, but at least 17 bits: a window larger than the input buys
/// no compression and the ring buffer is allocated (and zeroed) by window size, while below
/// 17 bits the `brotli` crate picks its H40 hasher family, which it does not implement, and
/// falls back to H6 with default tables that take far more memory than H5.
fn window_bits(len: usize) -> i32 {
    let bits = usize::BITS - len.saturating_sub(1).leading_zeros();
    (bits as i32).clamp(17, BROTLI_WINDOW as i32)
}

/// Brotli at a given quality (0–11); public so the benchmark can compare qualities.
pub fn brotli_at(body: &[u8], quality: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 4);
    let params = brotli::enc::BrotliEncoderParams {
        quality: quality.min(11) as i32,
        lgwin: window_bits(body.len()),
        size_hint: body.len(),
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &body[..], &mut out, &params).expect("in-memory write");
    out
}

/// The coding to send for a request's `Accept-Encoding` (RFC 9110 §12.5.3).
///
/// - Absent field: identity. The RFC allows any coding, but clients that send no
///   Accept-Encoding are often scripts that cannot decode; Cloudflare, nginx and Varnish send
///   identity too.
/// - Empty field: identity only.
/// - Otherwise the coding with the highest q-value among br, gzip, zstd and identity, `*`
///   standing for codings not listed; ties go to the smaller output: br, then gzip, then zstd
///   (ruzstd's one level sends 13–40 % more than gzip-6 on the catalogue's JSON, BENCHMARKS.md),
///   then identity. Browsers send `gzip, deflate, br, zstd` and get br; zstd goes to clients
///   that prefer it by q-value or accept nothing else of ours.
/// - zstd only in builds with the `zstd` feature (on by default).
/// - When nothing is acceptable (`identity;q=0` and no coding we have), identity is sent anyway:
///   the RFC lets a server disregard the field rather than answer 406, as nginx does.
pub fn negotiate(headers: &HeaderMap) -> Coding {
    let zstd = ZSTD;
    let mut present = false;
    let mut quality = [None::<u16>; 4]; // br, gzip, zstd, identity
    let mut star = None::<u16>;
    let mut seen = 0;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        present = true;
        let Ok(text) = value.to_str() else { continue };
        for member in text.split(',') {
            seen += 1;
            if seen > MAX_MEMBERS {
                break;
            }
            let mut parts = member.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .map(parse_qvalue)
                .next()
                .unwrap_or(Some(1000));
            let Some(q) = q else { continue }; // invalid q-value: ignore the member
            let slot = match name.as_str() {
                "br" => &mut quality[0],
                "gzip" | "x-gzip" => &mut quality[1],
                "zstd" if zstd => &mut quality[2],
                "identity" => &mut quality[3],
                "*" => &mut star,
                _ => continue,
            };
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
    }
    if !present {
        return Coding::Identity;
    }
    let q = |i: usize| -> u16 {
        match (quality[i], star) {
            (Some(q), _) => q,
            (None, Some(q)) => q,
            // Identity is acceptable unless excluded (by itself or by `*`).
            (None, None) if i == 3 => 1,
            (None, None) => 0,
        }
    };
    let candidates = [
        (Coding::Brotli, q(0)),
        (Coding::Gzip, q(1)),
        (Coding::Zstd, if zstd { q(2) } else { 0 }),
        (Coding::Identity, q(3)),
    ];
    candidates
        .into_iter()
        .filter(|&(_, q)| q > 0)
        // max_by_key keeps the last maximum; iterate in reverse so ties go to the first listed.
        .rev()
        .max_by_key(|&(_, q)| q)
        .map_or(Coding::Identity, |(coding, _)| coding)
}

/// A qvalue (§12.4.2) in thousandths: `0`, `0.5`, `1.000`; `None` when malformed.
fn parse_qvalue(text: &str) -> Option<u16> {
    let text = text.trim();
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    match int {
        "0" => Some(millis),
        "1" if millis == 0 => Some(1000),
        _ => None,
    }
}

/// Whether a media type is worth compressing: text, JSON, JavaScript, XML, SVG and the like.
/// Images, video, archives and fonts in WOFF2 are compressed already.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = crate::headers::media_type(content_type);
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/javascript"
                | "application/x-javascript"
                | "application/ecmascript"
                | "application/xml"
                | "application/wasm"
                | "application/manifest+json"
                | "application/x-ndjson"
                | "image/svg+xml"
                | "image/x-icon"
                | "font/ttf"
                | "font/otf"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;
    use std::io::Read;

    fn pick(value: Option<&str>) -> Coding {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
        }
        negotiate(&headers)
    }

    #[test]
    fn rfc9110_12_5_3_negotiation_table() {
        let table = [
            (None, Coding::Identity),
            (Some(""), Coding::Identity),
            (Some("gzip"), Coding::Gzip),
            (Some("gzip, deflate, br"), Coding::Brotli),
            (Some("br;q=0.5, gzip"), Coding::Gzip),
            (Some("gzip;q=0, br;q=0"), Coding::Identity),
            (Some("gzip;q=0"), Coding::Identity),
            (Some("*"), Coding::Brotli),
            (Some("*;q=0.5, gzip;q=0.6"), Coding::Gzip),
            (Some("*;q=0"), Coding::Identity),
            (Some("identity;q=0, gzip"), Coding::Gzip),
            (Some("identity;q=0"), Coding::Identity),
            (Some("deflate"), Coding::Identity),
            (Some("GZIP;Q=1"), Coding::Gzip),
            (Some("x-gzip"), Coding::Gzip),
            (Some("gzip;q=1.5, br;q=0.1"), Coding::Brotli),
            (Some("gzip;q=0.8, br;q=0.8"), Coding::Brotli),
            (Some("identity;q=1, gzip;q=1"), Coding::Gzip),
            (Some("identity, gzip;q=0.5"), Coding::Identity),
            // zstd (RFC 8878): after br and gzip on ties, by q-value otherwise.
            (Some("gzip, deflate, br, zstd"), Coding::Brotli),
            (Some("gzip, zstd"), Coding::Gzip),
            (Some("zstd"), Coding::Zstd),
            (Some("gzip;q=0.9, zstd"), Coding::Zstd),
            (Some("zstd;q=0.9, gzip"), Coding::Gzip),
            (Some("br;q=0.5, zstd"), Coding::Zstd),
            (Some("zstd;q=0"), Coding::Identity),
            (Some("ZSTD"), Coding::Zstd),
        ];
        for (header, expected) in table {
            // A build without the `zstd` feature never offers it.
            if !ZSTD && header.is_some_and(|h| h.to_ascii_lowercase().contains("zstd")) {
                continue;
            }
            assert_eq!(pick(header), expected, "Accept-Encoding: {header:?}");
        }
    }

    fn decode(coding: Coding, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Coding::Gzip => {
                flate2::read::GzDecoder::new(bytes)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Coding::Brotli => {
                brotli::Decompressor::new(bytes, 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Coding::Zstd => {
                ruzstd::decoding::StreamingDecoder::new(bytes)
                    .unwrap()
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Coding::Identity => out = bytes.to_vec(),
        }
        out
    }

    #[test]
    fn every_coding_round_trips_at_every_effort() {
        let body = br#"{"id":1,"name":"lamp","tags":["a","b"]}"#.repeat(50);
        for coding in [Coding::Brotli, Coding::Zstd, Coding::Gzip, Coding::Identity] {
            if coding == Coding::Zstd && !ZSTD {
                continue;
            }
            for effort in [Effort::Miss, Effort::Background] {
                let (bytes, level) = coding.encode(&body, effort);
                assert_eq!(level, coding.level(body.len(), effort));
                assert_eq!(decode(coding, &bytes), body, "{coding:?} {effort:?}");
            }
        }
    }

    #[test]
    fn the_background_works_harder_than_the_miss_where_the_coder_can() {
        for len in [1024, 64 * 1024, 1024 * 1024] {
            assert!(
                Coding::Brotli.level(len, Effort::Background)
                    > Coding::Brotli.level(len, Effort::Miss)
            );
            assert!(
                Coding::Gzip.level(len, Effort::Background) > Coding::Gzip.level(len, Effort::Miss)
            );
            // ruzstd has one level: nothing to recode.
            assert_eq!(
                Coding::Zstd.level(len, Effort::Background),
                Coding::Zstd.level(len, Effort::Miss)
            );
        }
        assert_eq!(
            Coding::Brotli.level(BROTLI_11_UP_TO, Effort::Background),
            11
        );
        assert_eq!(
            Coding::Brotli.level(BROTLI_11_UP_TO + 1, Effort::Background),
            10
        );
        assert_eq!(Coding::Brotli.level(1024 * 1024, Effort::Background), 9);
        assert_eq!(Coding::Brotli.level(1024, Effort::Miss), 2);
        assert_eq!(Coding::Brotli.level(1024 * 1024, Effort::Miss), 4);
        assert_eq!(Coding::Brotli.tag_suffix(11), "br11");
    }

    #[test]
    fn tokens_round_trip() {
        for coding in [Coding::Brotli, Coding::Zstd, Coding::Gzip] {
            assert_eq!(Coding::from_token(coding.token().unwrap()), Some(coding));
        }
        assert_eq!(Coding::from_token("deflate"), None);
    }

    #[test]
    fn compressible_types() {
        for yes in [
            "text/html; charset=utf-8",
            "application/json",
            "application/vnd.api+json",
            "image/svg+xml",
            "application/javascript",
        ] {
            assert!(is_compressible(yes), "{yes}");
        }
        for no in [
            "image/png",
            "video/mp4",
            "application/zip",
            "font/woff2",
            "application/octet-stream",
        ] {
            assert!(!is_compressible(no), "{no}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(value in "[ -~]{0,80}") {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(header::ACCEPT_ENCODING, value);
            }
            let _ = negotiate(&headers);
        }

        #[test]
        fn order_of_members_does_not_matter(mut members in prop::collection::vec(("(br|zstd|gzip|identity|\\*|deflate)", 0u16..=1000), 0..5)) {
            let render = |m: &[(String, u16)]| m.iter().map(|(n, q)| format!("{n};q={}.{:03}", q / 1000, q % 1000)).collect::<Vec<_>>().join(", ");
            // Duplicates take their highest q, so order is irrelevant for them too.
            let forward = pick(Some(&render(&members)));
            members.reverse();
            prop_assert_eq!(pick(Some(&render(&members))), forward);
        }
    }
}
