//! The dashboard's HTTP server: [`tiny_http`] on one background thread, serving the page, the
//! panels fragment and the figures as JSON from the last rendered view. It never waits on a
//! data source (the sampler renders; the server only copies a string out), and it checks the
//! stop flag between requests. `/stop?token=…` stops it (the token is known only to this
//! kernel's process, see [`super::registry`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{page, State};

/// Serves until the dashboard is stopped; the port closes when the server is dropped.
pub(super) fn serve(http: tiny_http::Server, state: &State) {
    while !state.stop.load(Ordering::SeqCst) {
        match http.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(req)) => respond(req, state),
            Ok(None) => {}
            Err(_) => break,
        }
    }
}

fn respond(req: tiny_http::Request, state: &State) {
    let path = req.url().split('?').next().unwrap_or("/").to_string();
    let (status, ctype, body) = {
        let view = match state.view.lock() {
            Ok(v) => v,
            Err(_) => {
                let _ = req.respond(
                    tiny_http::Response::from_string("dashboard state poisoned")
                        .with_status_code(500),
                );
                return;
            }
        };
        match path.as_str() {
            "/" => (
                200,
                "text/html; charset=utf-8",
                page::document(&view.panels.title, &view.fragment),
            ),
            "/panel" => (200, "text/html; charset=utf-8", view.fragment.clone()),
            "/data.json" => (200, "application/json", view.json.clone()),
            "/stop" if query_token(req.url()) == Some(state.token.as_str()) => {
                state.stop.store(true, Ordering::SeqCst);
                (200, "text/plain; charset=utf-8", "stopped".to_string())
            }
            "/stop" => (
                403,
                "text/plain; charset=utf-8",
                "wrong or missing token".to_string(),
            ),
            _ => (
                404,
                "text/plain; charset=utf-8",
                format!("not found: {path} (the dashboard serves /, /panel and /data.json)"),
            ),
        }
    };
    let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
    for (k, v) in [("Content-Type", ctype), ("Cache-Control", "no-store")] {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            resp = resp.with_header(h);
        }
    }
    let _ = req.respond(resp);
}

/// The `token` parameter of a URL's query.
fn query_token(url: &str) -> Option<&str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
}
