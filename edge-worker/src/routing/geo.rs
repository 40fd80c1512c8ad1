//! Where a request comes from, as the platform tells it (Cloudflare's `request.cf`, the
//! emulator's PoP), and distances on the globe.

/// Mean Earth radius (IUGG), the sphere haversine assumes.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// The geography of one request. Every field may be missing: Cloudflare omits `cf` in some
/// previews and tests, and clients behind anonymisers have no country.
///
/// Hosts put it into the request's extensions; the routing step reads it from there, so it
/// travels with background revalidations built from the same request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Geo {
    /// ISO 3166-1 alpha-2, upper case (`XX`/`T1` from Cloudflare count as unknown).
    pub country: Option<String>,
    /// Two-letter continent code (`EU`, `NA`, …).
    pub continent: Option<String>,
    /// The data centre that runs the worker (`fra`, `iad`).
    pub colo: Option<String>,
    /// Latitude and longitude in degrees: the client's if known, else the PoP's.
    pub location: Option<(f64, f64)>,
}

impl Geo {
    /// Normalises what a platform reports: upper-case country, unknown codes dropped,
    /// coordinates outside the globe dropped.
    pub fn new(
        country: Option<&str>,
        continent: Option<&str>,
        colo: Option<&str>,
        location: Option<(f64, f64)>,
    ) -> Self {
        let code = |c: Option<&str>| {
            c.map(str::trim)
                .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()))
                .map(str::to_ascii_uppercase)
                // Cloudflare's "unknown" and "Tor" pseudo-countries.
                .filter(|c| c != "XX" && c != "T1")
        };
        Self {
            country: code(country),
            continent: code(continent),
            colo: colo.map(str::to_string).filter(|c| !c.is_empty()),
            location: location.filter(|&(lat, lon)| {
                (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)
            }),
        }
    }
}

/// A point prepared for repeated distance computations (radians and cosine of latitude).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    lat: f64,
    lon: f64,
    cos_lat: f64,
}

impl GeoPoint {
    pub fn new(lat_deg: f64, lon_deg: f64) -> Self {
        let lat = lat_deg.to_radians();
        Self {
            lat,
            lon: lon_deg.to_radians(),
            cos_lat: lat.cos(),
        }
    }

    /// Great-circle distance by the haversine formula.
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        let dp = other.lat - self.lat;
        let dl = other.lon - self.lon;
        let h = (dp / 2.0).sin().powi(2) + self.cos_lat * other.cos_lat * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
    }
}

/// Haversine distance between two (lat, lon) points in degrees.
pub fn great_circle_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    GeoPoint::new(lat1, lon1).distance_km(&GeoPoint::new(lat2, lon2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_between_known_cities() {
        let london = (51.51, -0.13);
        let new_york = (40.71, -74.01);
        let sydney = (-33.87, 151.21);
        let d = great_circle_km(london, new_york);
        assert!((5550.0..5600.0).contains(&d), "{d}");
        let d = great_circle_km(london, sydney);
        assert!((16950.0..17050.0).contains(&d), "{d}");
        assert_eq!(great_circle_km(london, london), 0.0);
    }

    #[test]
    fn platform_values_are_normalised() {
        let geo = Geo::new(Some("de"), Some("eu"), Some("fra"), Some((50.1, 8.7)));
        assert_eq!(geo.country.as_deref(), Some("DE"));
        assert_eq!(geo.continent.as_deref(), Some("EU"));
        for unknown in ["XX", "T1", "", "DEU", "1a"] {
            assert_eq!(Geo::new(Some(unknown), None, None, None).country, None);
        }
        assert_eq!(Geo::new(None, None, None, Some((91.0, 0.0))).location, None);
        assert_eq!(Geo::new(None, None, Some(""), None).colo, None);
    }
}
