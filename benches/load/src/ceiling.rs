//! The ceiling: the least a gateway on this stack could do with a message. An actix-web server
//! with the gateway's worker count and body limit that reads the body, parses it as JSON and
//! answers 202 with a small JSON receipt: no authentication, normalisation, routing or store.
//! Measured by the same harness in the same run, it tells how much of the machine the gateway
//! leaves on the table.

use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, web};

/// Serves `POST /v1/messages` on `listener` until the returned server is stopped.
pub fn server(listener: TcpListener, workers: usize) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(|| {
        App::new().app_data(web::PayloadConfig::new(1024 * 1024)).route("/v1/messages", web::post().to(accept))
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok(server)
}

async fn accept(body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(message) => {
            let fields = message.as_object().map_or(0, serde_json::Map::len);
            HttpResponse::Accepted().json(serde_json::json!({ "id": uuid::Uuid::now_v7(), "fields": fields }))
        }
        Err(e) => HttpResponse::BadRequest().json(serde_json::json!({ "error": e.to_string() })),
    }
}
