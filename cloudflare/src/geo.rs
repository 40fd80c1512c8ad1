//! The request's geography as Cloudflare reports it in `request.cf`, and the one place it is
//! handed to the core.

use edge_worker::routing::Geo;
use serde::Deserialize;

/// The `request.cf` fields the adapter uses. Every field may be missing (previews, tests,
/// `wrangler dev` without a network, anonymised clients), and Cloudflare sends latitude and
/// longitude as strings, so both strings and numbers are accepted.
///
/// Why our own struct rather than `worker::Cf`: its accessors `unwrap()` (a missing `colo` or
/// an unparsable latitude would panic, and a panic poisons the isolate).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CfGeo {
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub continent: Option<String>,
    /// IATA code of the data centre, e.g. `FRA`.
    #[serde(default)]
    pub colo: Option<String>,
    #[serde(default, deserialize_with = "degrees")]
    pub latitude: Option<f64>,
    #[serde(default, deserialize_with = "degrees")]
    pub longitude: Option<f64>,
}

impl CfGeo {
    /// Reads the fields from `request.cf` as JSON text; anything unreadable counts as unknown.
    pub fn from_json(json: &str) -> Self {
        serde_json::from_str(json).unwrap_or_default()
    }

    /// The PoP name the core uses for its tier (`edge-<pop>` in Cache-Status): the colo in
    /// lower case, as the emulator's PoPs are named, or `cloudflare` when the colo is unknown.
    pub fn pop(&self) -> String {
        self.colo
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| "cloudflare".to_string())
    }

    /// The core's normalised form.
    pub fn to_core(&self) -> Geo {
        let location = self.latitude.zip(self.longitude);
        Geo::new(
            self.country.as_deref(),
            self.continent.as_deref(),
            self.colo.as_deref().map(|_| self.pop()).as_deref(),
            location,
        )
    }
}

/// Hands the request's geography to the core: the routing step reads `routing::Geo` from the
/// request's extensions (and background revalidations built from the request keep it).
///
/// This is where geo routing plugs in: today the worker is built without a router, so the
/// value is carried but not acted on. Enabling it is `EdgeWorker::with_routing(router)` with a
/// router built from configuration (see the README's "Deploy to Cloudflare").
pub fn hand_geo_to_core<B>(request: &mut http::Request<B>, geo: &CfGeo) {
    request.extensions_mut().insert(geo.to_core());
}

fn degrees<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Degrees {
        Number(f64),
        Text(String),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<Degrees>::deserialize(deserializer)? {
        Some(Degrees::Number(n)) => Some(n),
        Some(Degrees::Text(t)) => t.trim().parse().ok(),
        Some(Degrees::Other(_)) | None => None,
    }
    .filter(|n: &f64| n.is_finite()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cloudflare_shaped_cf_with_string_coordinates() {
        let geo = CfGeo::from_json(
            r#"{"colo":"FRA","country":"DE","continent":"EU","latitude":"50.11090",
                "longitude":"8.68213","asn":3320,"tlsVersion":"TLSv1.3"}"#,
        );
        assert_eq!(geo.pop(), "fra");
        assert_eq!(geo.country.as_deref(), Some("DE"));
        assert_eq!(geo.latitude, Some(50.1109));
        let core = geo.to_core();
        assert_eq!(core.country.as_deref(), Some("DE"));
        assert_eq!(core.continent.as_deref(), Some("EU"));
        assert_eq!(core.colo.as_deref(), Some("fra"));
        assert_eq!(core.location, Some((50.1109, 8.68213)));
    }

    #[test]
    fn missing_or_odd_fields_are_unknown_not_errors() {
        assert_eq!(CfGeo::from_json("not json"), CfGeo::default());
        assert_eq!(CfGeo::from_json("{}").pop(), "cloudflare");
        let geo = CfGeo::from_json(
            r#"{"colo":"../x","latitude":"north","longitude":{"a":1},"country":7}"#,
        );
        assert_eq!(geo, CfGeo::default());
        let geo = CfGeo::from_json(r#"{"colo":"syd","latitude":-33.9,"longitude":151.2}"#);
        assert_eq!(geo.pop(), "syd");
        assert_eq!(geo.to_core().location, Some((-33.9, 151.2)));
    }

    #[test]
    fn geo_travels_in_the_request_extensions() {
        let mut request = http::Request::new(());
        hand_geo_to_core(&mut request, &CfGeo::from_json(r#"{"country":"au"}"#));
        let geo = request.extensions().get::<Geo>().expect("geo inserted");
        assert_eq!(geo.country.as_deref(), Some("AU"));
    }
}
