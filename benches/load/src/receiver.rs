//! A webhook receiver for the delivery side of a load run: it checks each request's Standard
//! Webhooks signature against the subscription's secret with the official crate, answers 204
//! (or 401 to a bad signature, which the gateway retries), and notes which message arrived
//! when.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use standardwebhooks::Webhook;

/// What arrived.
#[derive(Default)]
pub struct Arrivals {
    /// The last segment of the path it was sent to (which subscription), the message id (the
    /// `webhook-id` without `msg_`) and when it arrived, signature checked.
    pub delivered: Vec<(String, String, Instant)>,
    /// Requests whose signature did not verify.
    pub bad_signatures: u64,
}

struct State {
    webhook: Webhook,
    arrivals: Mutex<Arrivals>,
}

/// A fresh `whsec_…` secret (24 random bytes) for the subscriptions of a run.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A running receiver: its URL (subscriptions append `/NAME` to tell themselves apart), and
/// what it has seen so far.
pub struct Receiver {
    pub url: String,
    state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Serves on `listen` (e.g. `127.0.0.1:0`) with `workers` threads, verifying with `secret`.
    pub fn start(listen: &str, secret: &str, workers: usize) -> Result<Receiver, String> {
        let webhook = Webhook::new(secret).map_err(|e| format!("the webhook secret: {e}"))?;
        let listener = TcpListener::bind(listen).map_err(|e| format!("the receiver on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let state = Arc::new(State { webhook, arrivals: Mutex::default() });
        let data = web::Data::from(state.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let served = actix_web::rt::System::new().block_on(async move {
                let server =
                    HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(receive)))
                        .workers(workers.max(1))
                        .listen(listener)?
                        .run();
                let _ = tx.send(server.handle());
                server.await
            });
            if let Err(e) = served {
                eprintln!("xietong-load: the webhook receiver stopped: {e}");
            }
        });
        let handle = rx.recv().map_err(|_| "the receiver did not start".to_string())?;
        Ok(Receiver { url: format!("http://{addr}/hook"), state, handle })
    }

    /// How many deliveries have arrived.
    pub fn count(&self) -> usize {
        self.state.arrivals.lock().map_or(0, |a| a.delivered.len())
    }

    /// Stops serving; what arrived.
    pub async fn stop(self) -> Arrivals {
        self.handle.stop(false).await;
        self.state.arrivals.lock().map(|mut a| std::mem::take(&mut *a)).unwrap_or_default()
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let at = Instant::now();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let id = header("webhook-id");
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        if let Ok(value) = http::HeaderValue::from_str(header(name)) {
            headers.insert(name, value);
        }
    }
    let signed = state.webhook.verify(&body, &headers).is_ok();
    let Ok(mut arrivals) = state.arrivals.lock() else { return HttpResponse::InternalServerError().finish() };
    if !signed {
        arrivals.bad_signatures += 1;
        return HttpResponse::Unauthorized().finish();
    }
    let path = req.path().rsplit('/').next().unwrap_or_default().to_string();
    arrivals.delivered.push((path, id.strip_prefix("msg_").unwrap_or(id).to_string(), at));
    HttpResponse::NoContent().finish()
}
