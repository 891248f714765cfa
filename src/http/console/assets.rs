//! The console's static files, embedded in the binary: served with their type, an ETag of their
//! content, and a day's cache (a new release changes the ETag).

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

const FILES: &[(&str, &str, &[u8])] = &[
    ("console.css", "text/css; charset=utf-8", include_bytes!("assets/console.css")),
    ("htmx-2.0.8.min.js", "text/javascript; charset=utf-8", include_bytes!("assets/htmx-2.0.8.min.js")),
];

pub async fn get(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    let Some((_, media, bytes)) = FILES.iter().find(|(name, _, _)| *name == file.as_str()) else {
        return super::page::not_found(&req);
    };
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..16]);
    if req.headers().get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return HttpResponse::NotModified().insert_header((ETAG, etag)).finish();
    }
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, *media))
        .insert_header((ETAG, etag))
        .insert_header((CACHE_CONTROL, "public, max-age=86400"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(*bytes)
}
