//! A personalised dashboard, servable two ways, with its render times modelled:
//!
//! - `?compose=edge` (the default): the page is an ESI template (`Surrogate-Control:
//!   content="ESI/1.0"`, public for five minutes) naming two fragments: the news, public and
//!   shared by everybody, and the signed-in user's summary, private to them. The edge fills it.
//! - `?compose=origin`: the origin renders the whole page itself for the user (layout, news and
//!   summary, one after another, as a server-side template engine does), private to them.
//!
//! The modelled times are the origin's service time for each piece (sleeps on the runtime's
//! clock, so virtual in a replay): what a full server-side render costs against the pieces.

use std::time::Duration;

use axum::extract::Query;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The template: layout and markup only.
pub const TEMPLATE_RENDER: Duration = Duration::from_millis(10);
/// The news panel, the same for everybody.
pub const NEWS_RENDER: Duration = Duration::from_millis(30);
/// The user's balance and recent transactions: a database read per user.
pub const SUMMARY_RENDER: Duration = Duration::from_millis(60);
/// The whole page rendered at the origin: the three above in turn, plus the page's own
/// templating of them.
pub const FULL_RENDER: Duration = Duration::from_millis(200);

pub const TEMPLATE_CACHE_CONTROL: &str = "public, max-age=300";
pub const NEWS_CACHE_CONTROL: &str = "public, max-age=60";
pub const SUMMARY_CACHE_CONTROL: &str = "private, max-age=30";

/// The template's fragment URLs.
pub const NEWS_PATH: &str = "/dashboard/news";
pub const SUMMARY_PATH: &str = "/api/users/me/summary";

#[derive(Debug, Deserialize)]
pub struct DashboardQuery {
    #[serde(default)]
    compose: Option<String>,
}

fn layout(body: &str) -> String {
    // About 4 KiB of markup around the panels, as a real page's head, navigation and footer.
    let navigation: String = (1..=40)
        .map(|i| format!("<li><a href=\"/section/{i}\">Section {i}</a></li>"))
        .collect();
    format!(
        "<!doctype html><html><head><title>Dashboard</title>\
         <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body>\
         <nav><ul>{navigation}</ul></nav><main>{body}</main>\
         <footer>Example Bank · statements · help · privacy</footer></body></html>"
    )
}

/// `experiment`: the edge's assignment (`x-edge-experiment`), shown as a real origin would
/// vary its output by it.
fn news(experiment: &str) -> String {
    let experiment = experiment.replace(['<', '>', '&', '"'], "");
    let items: String = (1..=20)
        .map(|i| format!("<article><h3>Market note {i}</h3><p>Rates held steady in region {i}; analysts expect little change this quarter.</p></article>"))
        .collect();
    format!("<section class=\"news\" data-experiment=\"{experiment}\">{items}</section>")
}

fn summary(subject: &str) -> String {
    // A stable pseudo-balance per subject, so pages differ by user and repeat for one.
    let seed = subject
        .bytes()
        .fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let rows: String = (1..=8)
        .map(|i| {
            let amount = (seed.rotate_left(i * 7) % 50_000) as f64 / 100.0;
            format!("<tr><td>Transaction {i}</td><td>{amount:.2}</td></tr>")
        })
        .collect();
    let subject = subject.replace(['<', '>', '&', '"'], "");
    format!(
        "<section class=\"summary\"><h2>Welcome back, {subject}</h2>\
         <p>Balance: {:.2}</p><table>{rows}</table></section>",
        (seed % 10_000_000) as f64 / 100.0
    )
}

fn html(body: String, cache_control: &'static str, surrogate: bool) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.clone(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&crate::routes::etag(body.as_bytes()))
            .unwrap_or(HeaderValue::from_static("\"0\"")),
    );
    if surrogate {
        headers.insert(
            "surrogate-control",
            HeaderValue::from_static("content=\"ESI/1.0\""),
        );
    }
    response
}

fn subject(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-auth-sub")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn signed_out() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"error": "unauthorized", "message": "the dashboard needs a signed-in user (x-auth-sub from the edge)"})),
    )
        .into_response()
}

/// `GET /api/users/me/dashboard`.
pub async fn page(Query(query): Query<DashboardQuery>, headers: HeaderMap) -> Response {
    match query.compose.as_deref() {
        None | Some("edge") => {
            tokio::time::sleep(TEMPLATE_RENDER).await;
            let panels = format!(
                "<esi:include src=\"{SUMMARY_PATH}\"/><esi:include src=\"{NEWS_PATH}\" onerror=\"continue\"/>"
            );
            html(layout(&panels), TEMPLATE_CACHE_CONTROL, true)
        }
        Some("origin") => {
            let Some(subject) = subject(&headers) else {
                return signed_out();
            };
            tokio::time::sleep(FULL_RENDER).await;
            let panels = format!("{}{}", summary(&subject), news(&experiment(&headers)));
            html(layout(&panels), SUMMARY_CACHE_CONTROL, false)
        }
        Some(other) => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "bad_request", "message": format!("compose={other:?}: use compose=edge or compose=origin")})),
        )
            .into_response(),
    }
}

/// `GET /dashboard/news`.
pub async fn news_panel(headers: HeaderMap) -> Response {
    tokio::time::sleep(NEWS_RENDER).await;
    html(news(&experiment(&headers)), NEWS_CACHE_CONTROL, false)
}

fn experiment(headers: &HeaderMap) -> String {
    headers
        .get("x-edge-experiment")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// `GET /api/users/me/summary`.
pub async fn summary_panel(headers: HeaderMap) -> Response {
    let Some(subject) = subject(&headers) else {
        return signed_out();
    };
    tokio::time::sleep(SUMMARY_RENDER).await;
    html(summary(&subject), SUMMARY_CACHE_CONTROL, false)
}
