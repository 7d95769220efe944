//! Files embedded in the binary (the dashboard, GraphiQL) served with an ETag, `no-cache` (so a
//! new binary's files are picked up at once) and their page's Content-Security-Policy.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file and the headers it is served with.
pub struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    csp: &'static str,
    etag: HeaderValue,
}

impl Asset {
    pub fn new(bytes: &'static [u8], content_type: &'static str, csp: &'static str) -> Self {
        // FNV-1a over the content: the names carry no hash, so the ETag lets browsers revalidate.
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        let etag =
            HeaderValue::from_str(&format!("\"{hash:016x}\"")).expect("hex is a valid header");
        Self {
            bytes,
            content_type,
            csp,
            etag,
        }
    }

    pub fn respond(&self, request_headers: &HeaderMap) -> Response {
        let fresh = request_headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|tag| tag == self.etag);
        let status = if fresh {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::OK
        };
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, self.etag.clone()),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(self.csp),
            ),
        ];
        if fresh {
            (status, headers).into_response()
        } else {
            (status, headers, self.bytes).into_response()
        }
    }
}

/// An embedded file of `api/assets/<dir>/`, served as `content_type` under `csp`.
macro_rules! embedded {
    ($dir:literal, $file:literal, $content_type:literal, $csp:expr) => {
        $crate::assets::Asset::new(
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/assets/",
                $dir,
                "/",
                $file
            )),
            $content_type,
            $csp,
        )
    };
}
pub(crate) use embedded;

/// The file called `name` among `files`, or the JSON 404 every unknown path gets.
pub fn respond_named(files: &[(&str, Asset)], name: &str, headers: &HeaderMap) -> Response {
    match files.iter().find(|(file, _)| *file == name) {
        Some((_, asset)) => asset.respond(headers),
        None => crate::error::ApiError::NotFound("Not Found").into_response(),
    }
}
