//! The route table: every endpoint, the handler that answers it, and what answers the rest. The
//! table is written once, in [`table!`]: it registers the resources and gives [`TABLE`], the
//! method and path of every operation, which the OpenAPI document must describe exactly
//! (`tests/it/contract.rs`). A known path with another method gets `405` with `Allow`; an
//! unknown path `404`.

use actix_web::web::{self, ServiceConfig};

use super::{
    admin, agencies, audit, contract, delivery, directory, feeds, health, inspect, messages, overview, rules,
    subscriptions, threads,
};

macro_rules! table {
    ($($path:literal => { $($method:ident: $handler:path),+ $(,)? })*) => {
        /// Every operation: (method, path) as the OpenAPI document names them.
        pub const TABLE: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),*];

        /// Adds every route of the gateway to `cfg`.
        pub fn routes(cfg: &mut ServiceConfig) {
            $(
                cfg.service(
                    web::resource($path)
                        $(.route(web::$method().to($handler)))+
                        .default_service(web::to(|| health::method_not_allowed(&[$(stringify!($method)),+]))),
                );
            )*
            super::console::routes(cfg);
            cfg.default_service(web::to(health::not_found));
        }
    };
}

table! {
    "/v1/messages" => { post: messages::post }
    "/v1/me" => { get: contract::me }
    "/v1/openapi.json" => { get: contract::openapi }
    "/v1/schemas" => { get: contract::schemas }
    "/v1/schemas/{type}" => { get: contract::schema }
    "/v1/schemas/{type}/{version}" => { get: contract::schema_version }
    "/v1/agencies/{id}/liaison" => { get: agencies::liaison }
    "/v1/feeds/{feed}/events" => { get: feeds::events }
    "/v1/feeds/{feed}/stream" => { get: feeds::stream }
    "/v1/subscriptions" => { get: subscriptions::list, post: subscriptions::create }
    "/v1/subscriptions/{id}" => { get: subscriptions::read, patch: subscriptions::patch, delete: subscriptions::delete }
    "/v1/subscriptions/{id}/events" => { get: subscriptions::events }
    "/v1/subscriptions/{id}/ack" => { post: subscriptions::ack }
    "/v1/subscriptions/{id}/rotate-secret" => { post: subscriptions::rotate }
    "/v1/subscriptions/{id}/enable" => { post: subscriptions::enable }
    "/v1/admin/overview" => { get: overview::get }
    "/v1/admin/explain" => { post: admin::explain }
    "/v1/admin/reload" => { post: admin::reload }
    "/v1/admin/rules" => { get: rules::get, put: rules::apply }
    "/v1/admin/rules/check" => { post: rules::check_draft }
    "/v1/admin/rules/preview" => { post: rules::preview_draft }
    "/v1/admin/rules/changes" => { get: rules::changes }
    "/v1/admin/rules/changes/{id}" => { get: rules::change }
    "/v1/admin/rules/changes/{id}/rollback" => { post: rules::roll_back }
    "/v1/admin/divisions/{code}" => { get: rules::get_division }
    "/v1/admin/messages" => { get: inspect::search }
    "/v1/admin/messages/{id}" => { get: inspect::one }
    "/v1/admin/threads" => { get: threads::list }
    "/v1/admin/threads/{id}" => { get: threads::one }
    "/v1/admin/stats" => { get: threads::stats }
    "/v1/admin/owed" => { get: threads::owed }
    "/v1/admin/subscriptions" => { get: delivery::list }
    "/v1/admin/subscriptions/{id}/pause" => { post: delivery::pause }
    "/v1/admin/subscriptions/{id}/resume" => { post: delivery::resume }
    "/v1/admin/subscriptions/{id}/replay" => { post: delivery::replay }
    "/v1/admin/agencies" => { get: directory::get }
    "/v1/admin/audit" => { get: audit::get }
    "/v1/admin/audit/verify" => { post: audit::post_verify }
    "/v1/admin/dead-letters" => { get: admin::dead_letters }
    "/v1/admin/dead-letters/{id}/replay" => { post: admin::replay }
    "/healthz" => { get: health::healthz }
    "/readyz" => { get: health::readyz }
    "/metrics" => { get: health::metrics }
}
