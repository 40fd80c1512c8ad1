//! Header-field helpers every host needs: the hop-by-hop set (RFC 9110 §7.6.1) and the
//! `(name, bytes)` pairs the WIT contract carries.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::WorkerError;

/// Fields that describe one connection, never forwarded or stored (RFC 9110 §7.6.1,
/// RFC 9111 §3.1). Fields named in `Connection` are hop-by-hop too; see [`connection_named`].
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Puts `metric` (a Server-Timing entry, W3C Server Timing §3) first in the message's
/// Server-Timing, as one field line, so hops read from the client to the origin.
pub fn prepend_server_timing(headers: &mut HeaderMap, metric: &str) {
    let mut joined = metric.to_string();
    for value in headers.get_all("server-timing") {
        if let Ok(value) = value.to_str() {
            joined.push_str(", ");
            joined.push_str(value);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&joined) {
        headers.insert("server-timing", value);
    }
}

/// The field names a message's `Connection` header lists.
pub fn connection_named(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(http::header::CONNECTION)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|f| !f.is_empty())
}

/// The end-to-end fields of a message, for forwarding: without the hop-by-hop ones
/// (RFC 9110 §7.6.1), those its Connection field names included.
pub fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = connection_named(headers)
        .map(str::to_ascii_lowercase)
        .collect();
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !is_hop_by_hop(name.as_str()) && !named.iter().any(|n| n == name.as_str()) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

/// Header fields as WIT `headers` (wire order kept, values as bytes).
pub fn to_pairs(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// WIT `headers` back into a map; the first invalid name or value is a
/// [`WorkerError::BadRequest`] naming the field.
pub fn from_pairs(pairs: Vec<(String, Vec<u8>)>) -> Result<HeaderMap, WorkerError> {
    let invalid = |name: &str| WorkerError::BadRequest(format!("invalid header field {name:?}"));
    let mut headers = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let field = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(&name))?;
        let value = HeaderValue::from_bytes(&value).map_err(|_| invalid(&name))?;
        headers.append(field, value);
    }
    Ok(headers)
}

/// The media type of a Content-Type value, lower-cased, without parameters
/// (`Application/JSON; charset=utf-8` → `application/json`).
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_keeping_repeated_fields() {
        let mut headers = HeaderMap::new();
        headers.append("set-cookie", "a=1".parse().unwrap());
        headers.append("set-cookie", "b=2".parse().unwrap());
        headers.append("etag", "\"x\"".parse().unwrap());
        assert_eq!(from_pairs(to_pairs(&headers)).unwrap(), headers);
    }

    #[test]
    fn invalid_fields_are_errors_not_panics() {
        assert!(from_pairs(vec![("bad name".into(), b"v".to_vec())]).is_err());
        assert!(from_pairs(vec![("x".into(), b"line\nbreak".to_vec())]).is_err());
    }
}
