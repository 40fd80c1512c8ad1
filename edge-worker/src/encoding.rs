//! Content codings: `Accept-Encoding` negotiation (RFC 9110 §12.5.3) and compression with
//! `brotli` and `flate2` (gzip).

use std::io::Write;

use http::header;
use http::HeaderMap;

/// The codings this worker produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Coding {
    Brotli,
    Gzip,
    Identity,
}

/// Bodies smaller than this are sent as they are: the framing would eat the saving.
pub const MIN_COMPRESS_SIZE: usize = 256;
/// Most `Accept-Encoding` members we read.
const MAX_MEMBERS: usize = 32;

/// Brotli quality for responses compressed on the fly (then cached), by body size. Chosen by
/// measurement on the catalogue's JSON (`cargo bench -p edge-worker --bench representation`,
/// figures in BENCHMARKS.md): from 32 KiB on, quality 7 is both smaller than gzip-6 and ~1.4×
/// faster (quality 8 is as slow as gzip-6 for 2–3% more; 5 and 6 are larger than gzip-6 on this
/// repetitive JSON). Below 32 KiB no brotli quality reaches gzip-6's speed, because brotli's
/// per-call set-up dominates; quality 5 is then as small as 7 at three times its speed.
pub fn brotli_quality(len: usize) -> u32 {
    if len >= LARGE_BODY {
        7
    } else {
        5
    }
}
const LARGE_BODY: usize = 32 * 1024;
/// Brotli window (log2 bytes), 4 MiB. Measured: smaller windows give the same output, and
/// below 17 they switch brotli to hashers that cost ~800 µs to set up even for 1 KiB.
const BROTLI_WINDOW: u32 = 22;
/// gzip level: 6 is zlib's and nginx's default, the usual trade-off.
const GZIP_LEVEL: u32 = 6;

impl Coding {
    /// The `Content-Encoding` token; `None` for identity.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Coding::Brotli => Some("br"),
            Coding::Gzip => Some("gzip"),
            Coding::Identity => None,
        }
    }

    /// Short name used in derived ETags and cache keys.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gz",
            Coding::Identity => "id",
        }
    }

    pub fn encode(self, body: &[u8]) -> Vec<u8> {
        match self {
            Coding::Identity => body.to_vec(),
            Coding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 3),
                    flate2::Compression::new(GZIP_LEVEL),
                );
                // Writing to a Vec cannot fail.
                encoder.write_all(body).expect("in-memory write");
                encoder.finish().expect("in-memory write")
            }
            Coding::Brotli => brotli_at(body, brotli_quality(body.len())),
        }
    }
}

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
/// - Otherwise the coding with the highest q-value among br, gzip and identity, `*` standing for
///   codings not listed; ties go to the smaller output (br, then gzip, then identity).
/// - When nothing is acceptable (`identity;q=0` and no coding we have), identity is sent anyway:
///   the RFC lets a server disregard the field rather than answer 406, as nginx does.
pub fn negotiate(headers: &HeaderMap) -> Coding {
    let mut present = false;
    let mut quality = [None::<u16>; 3]; // br, gzip, identity
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
                "identity" => &mut quality[2],
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
            (None, None) if i == 2 => 1,
            (None, None) => 0,
        }
    };
    let candidates = [
        (Coding::Brotli, q(0)),
        (Coding::Gzip, q(1)),
        (Coding::Identity, q(2)),
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
        ];
        for (header, expected) in table {
            assert_eq!(pick(header), expected, "Accept-Encoding: {header:?}");
        }
    }

    #[test]
    fn both_codings_round_trip() {
        let body = br#"{"id":1,"name":"lamp","tags":["a","b"]}"#.repeat(50);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&Coding::Gzip.encode(&body)[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        let mut out = Vec::new();
        brotli::Decompressor::new(&Coding::Brotli.encode(&body)[..], 4096)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
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
        fn order_of_members_does_not_matter(mut members in prop::collection::vec(("(br|gzip|identity|\\*|deflate)", 0u16..=1000), 0..5)) {
            let render = |m: &[(String, u16)]| m.iter().map(|(n, q)| format!("{n};q={}.{:03}", q / 1000, q % 1000)).collect::<Vec<_>>().join(", ");
            // Duplicates take their highest q, so order is irrelevant for them too.
            let forward = pick(Some(&render(&members)));
            members.reverse();
            prop_assert_eq!(pick(Some(&render(&members))), forward);
        }
    }
}
