//! A webhook receiver for the delivery side of a load run: it checks each request's Standard
//! Webhooks signature against the subscription's secret, answers 204 (or 401 to a bad
//! signature, which the gateway retries), and notes which message arrived when.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use crate::deliver::signature;

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
    keys: Vec<Vec<u8>>,
    arrivals: Mutex<Arrivals>,
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
        let keys = vec![signature::decode_secret(secret)?];
        let listener = TcpListener::bind(listen).map_err(|e| format!("the receiver on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let state = Arc::new(State { keys, arrivals: Mutex::default() });
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
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp").parse::<i64>().unwrap_or(0));
    let expected = signature::sign(&state.keys, id, timestamp, &body);
    let signed = header("webhook-signature").split(' ').any(|s| s == expected);
    let Ok(mut arrivals) = state.arrivals.lock() else { return HttpResponse::InternalServerError().finish() };
    if !signed {
        arrivals.bad_signatures += 1;
        return HttpResponse::Unauthorized().finish();
    }
    let path = req.path().rsplit('/').next().unwrap_or_default().to_string();
    arrivals.delivered.push((path, id.strip_prefix("msg_").unwrap_or(id).to_string(), at));
    HttpResponse::NoContent().finish()
}
