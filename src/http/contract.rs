//! The contract for the systems that connect: the OpenAPI 3.1 document
//! (`GET /v1/openapi.json`), the message schemas (`GET /v1/schemas`, `GET /v1/schemas/{type}`),
//! and who a caller is (`GET /v1/me`). The document is generated from the handlers' own
//! `#[utoipa::path]` annotations and types ([`Api`]), completed with what no Rust type says: the
//! canonical event and the message schemas of `schemas/`, the examples of `docs/examples`, the
//! webhooks the gateway posts, and the security schemes. `docs/openapi.json` is the same
//! document, committed; a test fails when they differ.

use std::sync::{Arc, LazyLock, Mutex};

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::{OpenApi, ToSchema};

use super::auth::{self, Principal};
use super::error::{ApiError, Document};
use super::{
    admin, agencies, audit, delivery, directory, feeds, health, inspect, messages, overview, rules, subscriptions,
    threads,
};
use crate::gateway::Gateway;
use crate::model::schema::{CANONICAL_EVENT, Schemas};
use crate::model::{Code, Problem, Sender};
use crate::route::divisions::Level;
use crate::tls::PeerCertificate;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "xietong",
        description = "The cross-agency data-exchange gateway of the collaborative IP-protection mechanism (the opinion of April 2022): agency systems post messages in their native formats or as canonical CloudEvents; recipients read feeds, streams and subscriptions, or receive signed webhooks. Errors are RFC 9457 problem documents. Reference: docs/api.md.",
        license(name = "Apache-2.0 OR MIT")
    ),
    paths(
        messages::post,
        me,
        openapi,
        schemas,
        schema,
        schema_version,
        agencies::liaison,
        feeds::events,
        feeds::stream,
        subscriptions::list,
        subscriptions::create,
        subscriptions::read,
        subscriptions::patch,
        subscriptions::delete,
        subscriptions::events,
        subscriptions::ack,
        subscriptions::rotate,
        subscriptions::enable,
        overview::get,
        admin::explain,
        admin::reload,
        rules::get,
        rules::apply,
        rules::check_draft,
        rules::preview_draft,
        rules::changes,
        rules::change,
        rules::roll_back,
        rules::get_division,
        inspect::search,
        inspect::one,
        threads::list,
        threads::one,
        threads::stats,
        threads::owed,
        delivery::list,
        delivery::pause,
        delivery::resume,
        delivery::replay,
        directory::get,
        audit::get,
        audit::post_verify,
        admin::dead_letters,
        admin::replay,
        health::healthz,
        health::readyz,
        health::metrics,
    ),
    components(schemas(Document)),
    tags(
        (name = "messages", description = "Posting messages, and trying them first (dry runs)."),
        (name = "contract", description = "The API description, the message schemas, and who you are."),
        (name = "feeds", description = "Reading your feed: JSON pages and Server-Sent Events."),
        (name = "subscriptions", description = "Webhook and cursor subscriptions to your own feed."),
        (name = "agencies", description = "Liaisons (联络人) of the agencies you work with."),
        (name = "admin", description = "The operators' endpoints (an operator's token)."),
        (name = "operations", description = "Health, readiness and metrics."),
    )
)]
pub struct Api;

/// The document, built once.
static DOCUMENT: LazyLock<Value> =
    LazyLock::new(|| build(&crate::model::schema::Schemas::load().expect("the embedded schemas load")));

/// The OpenAPI document as the gateway serves it (and as `docs/openapi.json` holds it).
pub fn document() -> &'static Value {
    &DOCUMENT
}

/// The OpenAPI 3.1 document of this API
///
/// Generated from the handlers and the message types in force: with the shipped schemas, the
/// same as `docs/openapi.json`; with a `schemas:` directory, its types are described too. No
/// credentials needed.
#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "openapi", tag = "contract", responses(
    (status = 200, description = "The OpenAPI 3.1 document", body = Object),
))]
pub async fn openapi(gw: web::Data<Gateway>) -> HttpResponse {
    let schemas = gw.runtime().config.schemas.clone();
    if schemas.registry().dir.is_none() {
        return HttpResponse::Ok().json(document());
    }
    HttpResponse::Ok().json(&*document_for(schemas))
}

/// The document for a registry with types or versions of its own, built once per registry in
/// force (a reload gives a new one).
fn document_for(schemas: Arc<Schemas>) -> Arc<Value> {
    static LAST: Mutex<Option<(Arc<Schemas>, Arc<Value>)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((built_for, doc)) = last.as_ref()
        && Arc::ptr_eq(built_for, &schemas)
    {
        return doc.clone();
    }
    let doc = Arc::new(build(&schemas));
    *last = Some((schemas, doc.clone()));
    doc
}

/// A message type and where its schema is.
#[derive(Serialize, ToSchema)]
pub struct SchemaEntry {
    /// The CloudEvents `type`.
    #[serde(rename = "type")]
    pub message_type: &'static str,
    /// The section of the opinion the flow comes from.
    pub section: &'static str,
    pub title: String,
    pub version: u32,
    /// Where the schema is served: the `dataschema` of events of this type.
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct SchemaList {
    pub schemas: Vec<SchemaEntry>,
}

/// Every message type, with its schema's URL and version
///
/// No credentials needed.
#[utoipa::path(get, path = "/v1/schemas", operation_id = "list_schemas", tag = "contract", responses(
    (status = 200, description = "Every message type", body = SchemaList),
))]
pub async fn schemas(gw: web::Data<Gateway>) -> HttpResponse {
    let rt = gw.runtime();
    let s = &rt.config.schemas;
    let list = s
        .types()
        .iter()
        .map(|t| SchemaEntry {
            message_type: t.name,
            section: t.section,
            title: s.published(t).and_then(|p| p["title"].as_str().map(str::to_string)).unwrap_or_default(),
            version: t.version,
            url: s.dataschema(t),
        })
        .collect();
    HttpResponse::Ok().json(SchemaList { schemas: list })
}

/// The JSON Schema (2020-12) of a message type's `data`, at its current version
///
/// One self-contained document, the shared definitions included, whose `$id` is the URL of
/// this version (`/v1/schemas/{type}/v{N}`), the URL events name as their `dataschema`: any JSON
/// Schema 2020-12 validator can check a received event's `data` with it. No credentials needed.
#[utoipa::path(get, path = "/v1/schemas/{type}", operation_id = "schema", tag = "contract",
    params(("type" = String, Path, description = "A message type, e.g. cn.xietong.clue.transfer")),
    responses(
        (status = 200, description = "The schema", body = Object, content_type = "application/schema+json"),
        (status = 404, description = "No such message type"),
    ))]
pub async fn schema(gw: web::Data<Gateway>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let rt = gw.runtime();
    let published = rt.config.schemas.lookup(&path).and_then(|t| rt.config.schemas.published(t)).ok_or_else(|| {
        Problem::new(Code::NotFound, format!("no message type `{}`; GET /v1/schemas lists them", path.as_str()))
    })?;
    // The current version changes when the registry does: caches ask again.
    Ok(HttpResponse::Ok()
        .content_type("application/schema+json")
        .insert_header((CACHE_CONTROL, "public, max-age=60"))
        .json(published))
}

/// The JSON Schema (2020-12) of one version of a message type's `data`
///
/// The URL an event names as its `dataschema`. The gateway serves the version in force; a
/// version it does not hold is 404, naming the one it has. No credentials needed.
#[utoipa::path(get, path = "/v1/schemas/{type}/{version}", operation_id = "schema_version", tag = "contract",
    params(
        ("type" = String, Path, description = "A message type, e.g. cn.xietong.clue.transfer"),
        ("version" = String, Path, description = "The version, e.g. v1"),
    ),
    responses(
        (status = 200, description = "The schema", body = Object, content_type = "application/schema+json"),
        (status = 404, description = "No such message type, or not at this version"),
    ))]
pub async fn schema_version(
    gw: web::Data<Gateway>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let rt = gw.runtime();
    let s = &rt.config.schemas;
    let Some(t) = s.lookup(&name) else {
        return Err(
            Problem::new(Code::NotFound, format!("no message type `{name}`; GET /v1/schemas lists them")).into()
        );
    };
    if version != format!("v{}", t.version) {
        return Err(Problem::new(
            Code::NotFound,
            format!("{name} is served at version v{} only; GET /v1/schemas/{name}/v{} has it", t.version, t.version),
        )
        .into());
    }
    let published = s.published(t).ok_or_else(|| Problem::new(Code::NotFound, format!("no schema for `{name}`")))?;
    // A version's schema never changes: raising it gives a new URL.
    Ok(HttpResponse::Ok()
        .content_type("application/schema+json")
        .insert_header((CACHE_CONTROL, "public, max-age=86400, immutable"))
        .json(published))
}

/// Who a caller is, as the gateway sees it.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// `KIND:DIVISION`, `hub:REGION` or `operator:NAME`.
    pub id: String,
    /// `ip_office`, `procuratorate`, `public_security`, `court`, `hub` or `operator`.
    pub kind: String,
    /// The name agencies.yaml gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An agency's division and level (`national`, `province`, `prefecture`, `county`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub division: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// The key regions an agency's division belongs to; a hub's own region.
    pub regions: Vec<String>,
    /// The source format of its native messages (none: canonical events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// How it proved who it is: `token`, `certificate`.
    pub credentials: Vec<&'static str>,
    /// The message types it may post (permissions.yaml).
    pub may_send: Vec<&'static str>,
    /// Its own feed: `GET /v1/feeds/{feed}/events`.
    pub feed: String,
}

/// Who am I
///
/// The identity the token or client certificate maps to, its kind, level, regions and format,
/// the message types it may send, and its feed.
#[utoipa::path(get, path = "/v1/me", operation_id = "me", tag = "contract", security(("bearer" = []), ("mutualTLS" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "No valid credentials"),
    ))]
pub async fn me(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let rt = gw.runtime();
    let config = &rt.config;
    let caller = auth::principal(&config.agencies, &config.operators, &req)?;
    let feed = caller.feed(&config.router.operators_feed).to_string();
    let regions_of = |d| config.router.regions.of(d).iter().map(|r| r.key.clone()).collect();
    let me = match &caller {
        Principal::Agency(a) => {
            let agency = config.agencies.get(a);
            let by_certificate = req
                .conn_data::<PeerCertificate>()
                .and_then(|p| config.agencies.by_certificate(p))
                .is_some_and(|c| c.id == *a);
            let by_token = req
                .headers()
                .get(actix_web::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .and_then(|t| config.agencies.authenticate(t.trim()))
                .is_some_and(|t| t.id == *a);
            let credentials = [(by_token, "token"), (by_certificate, "certificate")]
                .into_iter()
                .filter_map(|(yes, what)| yes.then_some(what))
                .collect();
            Me {
                id: a.to_string(),
                kind: a.kind.as_str().to_string(),
                name: agency.map(|x| x.name.clone()).filter(|n| !n.is_empty()),
                division: Some(a.division.to_string()),
                level: Some(Level::of(&a.division).as_str().to_string()),
                regions: regions_of(&a.division),
                format: config.mapping_for(&Sender::Agency(*a), crate::model::BodyKind::Native).map(|m| m.name.clone()),
                credentials,
                may_send: config.permissions.types_for(&Sender::Agency(*a)),
                feed,
            }
        }
        Principal::Hub(key) => Me {
            id: caller.to_string(),
            kind: "hub".into(),
            name: config.agencies.hub(key).map(|h| h.name.clone()).filter(|n| !n.is_empty()),
            division: None,
            level: None,
            regions: vec![key.clone()],
            format: None,
            credentials: vec!["token"],
            may_send: config.permissions.types_for(&Sender::Hub(key.clone())),
            feed,
        },
        Principal::Operator(_) => Me {
            id: caller.to_string(),
            kind: "operator".into(),
            name: None,
            division: None,
            level: None,
            regions: Vec::new(),
            format: None,
            credentials: vec!["token"],
            may_send: Vec::new(),
            feed,
        },
    };
    Ok(HttpResponse::Ok().json(me))
}

/// The examples of `docs/examples` and of the brief, as (name, sender, media type, text).
const EXAMPLES: &[(&str, &str, &str, &str)] = &[
    (
        "clue-transfer",
        "ip_office:330100",
        "application/json",
        include_str!("../../tests/fixtures/shared/examples/ipo-clue-transfer.json"),
    ),
    (
        "opinion-request",
        "procuratorate:440300",
        "application/json",
        include_str!("../../tests/fixtures/shared/examples/prc-opinion-request.json"),
    ),
    (
        "meeting-notice",
        "ip_office:330100",
        "application/json",
        include_str!("../../docs/examples/ipo-meeting-notice.json"),
    ),
    (
        "meeting-reply",
        "procuratorate:330100",
        "application/json",
        include_str!("../../docs/examples/prc-meeting-reply.json"),
    ),
    (
        "cooperation-notice",
        "ip_office:330000",
        "application/json",
        include_str!("../../docs/examples/ipo-cooperation-notice.json"),
    ),
    (
        "evaluation-notice",
        "procuratorate:000000",
        "application/json",
        include_str!("../../docs/examples/prc-evaluation-notice.json"),
    ),
    (
        "hub-notice",
        "hub:yangtze_delta",
        "application/cloudevents+json",
        include_str!("../../docs/examples/hub-notice.json"),
    ),
];

/// The document: what utoipa generates from the handlers, completed (see the module).
fn build(loaded: &Schemas) -> Value {
    let mut doc = serde_json::to_value(Api::openapi()).unwrap_or_default();
    doc["servers"] = json!([{"url": "/", "description": "this gateway"}]);
    let components = doc["components"].as_object_mut().map(std::mem::take).unwrap_or_default();
    let mut components = Value::Object(components);
    components["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "An agency's, hub's or operator's token (agencies.yaml, operators.yaml)."},
        "mutualTLS": {"type": "mutualTLS",
                      "description": "An agency's client certificate (SAN URI urn:xietong:agency:KIND:DIVISION, or its fingerprint or subject in agencies.yaml)."},
    });
    let schemas = components["schemas"].as_object_mut().expect("utoipa writes components.schemas");
    message_schemas(loaded, schemas);
    doc["components"] = components;
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                problems(operation);
            }
        }
    }
    let mut examples = Map::new();
    let mut canonical = Map::new();
    for (name, sender, media, text) in EXAMPLES {
        let value: Value = serde_json::from_str(text).expect("the examples are JSON");
        let example = json!({"summary": format!("as {sender}"), "value": value});
        if *media == "application/json" { &mut examples } else { &mut canonical }.insert(name.to_string(), example);
    }
    let body = &mut doc["paths"]["/v1/messages"]["post"]["requestBody"]["content"];
    body["application/json"] = json!({"schema": {"$ref": "#/components/schemas/NativeMessage"}, "examples": examples});
    body["application/cloudevents+json"] = json!({
        "schema": {"$ref": format!("#/components/schemas/{CANONICAL_EVENT}")},
        "examples": canonical,
    });
    // The operators' explain takes what senders post.
    doc["paths"]["/v1/admin/explain"]["post"]["requestBody"]["content"] = json!({
        "application/json": {"schema": {"$ref": "#/components/schemas/NativeMessage"}},
        "application/cloudevents+json": {"schema": {"$ref": format!("#/components/schemas/{CANONICAL_EVENT}")}},
    });
    // A resend's receipt, or a dry run's outcome: one media type, two shapes.
    doc["paths"]["/v1/messages"]["post"]["responses"]["200"]["content"]["application/json"]["schema"] =
        json!({"anyOf": [{"$ref": "#/components/schemas/Receipt"}, {"$ref": "#/components/schemas/Outcome"}]});
    doc["webhooks"] = webhooks();
    doc
}

/// Every error response of an operation is a problem document: those the annotations list get
/// its body, and `default` covers the rest (a limit, the store away).
fn problems(operation: &mut Map<String, Value>) {
    let problem = json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}});
    let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { return };
    for (status, response) in responses.iter_mut() {
        if status.starts_with('4') || status.starts_with('5') {
            response["content"] = problem.clone();
        }
    }
    responses.insert(
        "default".into(),
        json!({"description": "A refusal or an error: an RFC 9457 problem document (docs/api.md lists every code).",
               "content": problem}),
    );
}

/// The canonical event and the message schemas of `schemas/`, as components: the shared
/// definitions as `common.NAME`, each type's data as `data.TYPE`, references rewritten to them.
fn message_schemas(loaded: &Schemas, out: &mut Map<String, Value>) {
    if let Some(defs) = loaded.registry().common["$defs"].as_object() {
        for (name, def) in defs {
            let mut def = def.clone();
            rewrite_refs(&mut def);
            out.insert(format!("common.{name}"), def);
        }
    }
    for t in loaded.types() {
        if let Some(mut published) = loaded.published(t) {
            if let Some(obj) = published.as_object_mut() {
                for key in ["$schema", "$id", "$defs", "x-version", "x-section"] {
                    obj.remove(key);
                }
            }
            rewrite_refs(&mut published);
            out.insert(format!("data.{}", t.name), published);
        }
    }
    out.insert(
        "NativeMessage".into(),
        json!({"type": "object", "description": "A message in the sender's native format (docs/mapping.md; the shipped formats are in config/sources, their examples in docs/examples)."}),
    );
    let names: Vec<&str> = loaded.types().iter().map(|t| t.name).collect();
    out.insert(
        CANONICAL_EVENT.into(),
        json!({
            "description": "A canonical message: a CloudEvents 1.0 event in structured JSON mode (docs/messages.md). `data` follows the schema of its type (components data.TYPE, or GET /v1/schemas/{type}).",
            "type": "object",
            "required": ["specversion", "id", "type", "time", "data"],
            "properties": {
                "specversion": {"const": "1.0"},
                "id": {"type": "string", "minLength": 1, "description": "The gateway's id (UUIDv7); when posting, the sender's own id for the message."},
                "source": {"type": "string", "description": "urn:xietong:agency:KIND:DIVISION, urn:xietong:hub:REGION or urn:xietong:gateway."},
                "type": {"enum": names},
                "subject": {"type": "string", "description": "The case number."},
                "time": {"type": "string", "format": "date-time"},
                "datacontenttype": {"const": "application/json"},
                "dataschema": {"type": "string", "format": "uri", "description": "Where the type's schema is served."},
                "sender": {"type": "string", "description": "The sending agency or hub, or gateway."},
                "classification": {"enum": ["公开", "内部", "工作秘密"]},
                "nativeid": {"type": "string", "description": "The sender's own id for the message."},
                "inreplyto": {"type": "string", "description": "The sender's reference to the message this one answers."},
                "data": {"$ref": "#/components/schemas/common.data"}
            }
        }),
    );
}

/// `#/$defs/x` and the shared schema's URN become references to the components.
fn rewrite_refs(node: &mut Value) {
    match node {
        Value::Object(members) => {
            for (key, value) in members.iter_mut() {
                match value {
                    Value::String(r) if key == "$ref" => {
                        if let Some(name) = r.rsplit_once("#/$defs/").map(|(_, n)| n.to_string()) {
                            *r = format!("#/components/schemas/common.{name}");
                        }
                    }
                    _ => rewrite_refs(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// What the gateway posts to a webhook subscription (docs/delivery.md).
fn webhooks() -> Value {
    let header = |name: &str, description: &str| json!({"name": name, "in": "header", "required": true, "schema": {"type": "string"}, "description": description});
    json!({
        "event": {
            "post": {
                "summary": "An event of your feed, pushed to your webhook",
                "description": "Signed as Standard Webhooks do: verify webhook-signature over `webhook-id.webhook-timestamp.body` with your subscription's secret before trusting the body. A 2xx acknowledges; anything else is retried on the subscription's schedule, then kept as a dead letter; 410 disables the subscription until you enable it again.",
                "tags": ["subscriptions"],
                "parameters": [
                    header("webhook-id", "The same on every retry of one event for one subscription: deduplicate by it."),
                    header("webhook-timestamp", "Unix seconds when this attempt was signed."),
                    header("webhook-signature", "v1,BASE64 (HMAC-SHA256); several, space-separated, during a secret rotation."),
                ],
                "requestBody": {"required": true, "content": {"application/cloudevents+json": {"schema": {"$ref": "#/components/schemas/CanonicalEvent"}}}},
                "responses": {
                    "2XX": {"description": "Received: the event is acknowledged."},
                    "410": {"description": "Gone: the gateway disables the subscription."},
                    "default": {"description": "Not received: the gateway retries."}
                }
            }
        }
    })
}
