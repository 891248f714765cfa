//! The route table: every endpoint, the handler that answers it, and what answers the rest.

use actix_web::web::{self, ServiceConfig};

use super::{admin, agencies, feeds, health, messages, subscriptions, threads};

/// Adds every route of the gateway to `cfg`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(post_only("/v1/messages", messages::post))
        .service(post_only("/v1/admin/explain", admin::explain))
        .service(post_only("/v1/admin/reload", admin::reload))
        .route("/v1/admin/messages/{id}", web::get().to(admin::trace))
        .route("/v1/admin/threads", web::get().to(threads::list))
        .route("/v1/admin/threads/{id}", web::get().to(threads::one))
        .route("/v1/admin/stats", web::get().to(threads::stats))
        .route("/v1/admin/dead-letters", web::get().to(admin::dead_letters))
        .service(post_only("/v1/admin/dead-letters/{id}/replay", admin::replay))
        .route("/v1/agencies/{id}/liaison", web::get().to(agencies::liaison))
        .route("/v1/feeds/{feed}/events", web::get().to(feeds::events))
        .route("/v1/feeds/{feed}/stream", web::get().to(feeds::stream))
        .service(
            web::resource("/v1/subscriptions")
                .route(web::get().to(subscriptions::list))
                .route(web::post().to(subscriptions::create)),
        )
        .service(
            web::resource("/v1/subscriptions/{id}")
                .route(web::get().to(subscriptions::read))
                .route(web::patch().to(subscriptions::patch))
                .route(web::delete().to(subscriptions::delete)),
        )
        .route("/v1/subscriptions/{id}/events", web::get().to(subscriptions::events))
        .service(post_only("/v1/subscriptions/{id}/ack", subscriptions::ack))
        .service(post_only("/v1/subscriptions/{id}/rotate-secret", subscriptions::rotate))
        .service(post_only("/v1/subscriptions/{id}/enable", subscriptions::enable))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .default_service(web::to(health::not_found));
}

fn post_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path).route(web::post().to(handler)).default_service(web::to(health::method_not_allowed))
}
