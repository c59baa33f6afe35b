//! The dashboard's HTTP server: a loopback listener serving the page, the panels fragment and
//! the figures as JSON from the last rendered view, each connection on its own short-lived
//! thread (a slow page never holds up another), with read and write timeouts so a reader that
//! stops reading cannot keep a thread, and the accept loop checking the stop flag every 100 ms
//! (`stop()` ends it). It never waits on a data source (the sampler renders; the server only
//! copies a string out).
//!
//! Host check (DNS rebinding: a web page whose own name resolves to 127.0.0.1 sends its own name
//! as `Host`): a request addressed to the loopback address (`127.0.0.1`, `localhost`, `[::1]`,
//! with or without the port) is answered; any other `Host` only under the dashboard's secret
//! view path `/v/<key>/…`, which is what jupyter-server-proxy sends (it serves the page at
//! `<Jupyter's base URL>proxy/<port>/v/<key>/` and forwards the browser's own `Host`, e.g. the
//! JupyterHub's name). A rebinding page knows neither the key nor, usually, the port: it gets
//! 421. The key is in the cell's output only; the stop token never leaves the kernel.
//! `/stop?token=…` stops it (the token is known only to this kernel's process, see
//! [`super::registry`]).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{page, State};

/// Longest wait for a request's head, and for a response to be taken by a slow reader.
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections answered at once; more are closed at once (a page polls twice a second).
const MAX_CONNECTIONS: usize = 32;
/// Longest request head read (request line and headers).
const MAX_HEAD: usize = 16 * 1024;

/// Serves until the dashboard is stopped; the port closes when this returns.
pub(super) fn serve(listener: TcpListener, state: &Arc<State>) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    let open = Arc::new(AtomicUsize::new(0));
    while !state.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    open.fetch_sub(1, Ordering::SeqCst);
                    continue; // dropped: closed at once
                }
                let (state, done) = (state.clone(), open.clone());
                let spawned = std::thread::Builder::new()
                    .name("bde-dashboard-conn".into())
                    .spawn(move || {
                        answer(stream, &state);
                        done.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    open.fetch_sub(1, Ordering::SeqCst);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A parsed request: the path with its query, and the Host header.
struct Request {
    target: String,
    host: Option<String>,
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    let mut read = 0;
    reader.read_line(&mut line).ok()?;
    read += line.len();
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?, parts.next()?.to_string());
    if method != "GET" && method != "HEAD" {
        return Some(Request {
            target: String::new(),
            host: None,
        });
    }
    let mut host = None;
    loop {
        let mut h = String::new();
        let n = reader.read_line(&mut h).ok()?;
        read += n;
        if n == 0 || h.trim().is_empty() || read > MAX_HEAD {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("host") {
                host = Some(v.trim().to_string());
            }
        }
    }
    Some(Request { target, host })
}

/// Whether `host` (a Host header) names this machine's loopback address.
pub(super) fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, port)) if port.is_empty() || port[1..].parse::<u16>().is_ok() => {
                return inside == "::1";
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.parse::<u16>().is_ok() => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1"
}

fn answer(stream: TcpStream, state: &State) {
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(IO_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    let Some(req) = read_request(&stream) else {
        return;
    };
    let (status, ctype, body) = respond(&req, state);
    let reason = match status {
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        421 => "Misdirected Request",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = stream;
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body.as_bytes()))
        .and_then(|_| stream.flush());
}

fn respond(req: &Request, state: &State) -> (u16, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    if req.target.is_empty() {
        return (405, TEXT, "the dashboard answers GET only".into());
    }
    let full = req.target.split('?').next().unwrap_or("/");
    let keyed_prefix = format!("/v/{}", state.view_key);
    let keyed = full == keyed_prefix || full.starts_with(&format!("{keyed_prefix}/"));
    let path = if keyed {
        &full[keyed_prefix.len()..]
    } else {
        full
    };
    let path = if path.is_empty() { "/" } else { path };
    let Ok(view) = state.view.lock() else {
        return (500, TEXT, "dashboard state poisoned".into());
    };
    let loopback = req.host.as_deref().is_some_and(loopback_host);
    if !loopback && (!keyed || path == "/stop") {
        return (
            421,
            TEXT,
            "the dashboard answers requests addressed to 127.0.0.1 or localhost, or under its view path".into(),
        );
    }
    match path {
        "/" => (
            200,
            "text/html; charset=utf-8",
            page::document(&view.panels.title, &view.fragment),
        ),
        "/panel" => (200, "text/html; charset=utf-8", view.fragment.clone()),
        "/data.json" => (200, "application/json", view.json.clone()),
        "/stop" if query_token(&req.target) == Some(state.token.as_str()) => {
            state.stop.store(true, Ordering::SeqCst);
            (200, TEXT, "stopped".to_string())
        }
        "/stop" => (403, TEXT, "wrong or missing token".to_string()),
        _ => (
            404,
            TEXT,
            "not found (the dashboard serves /, /panel and /data.json)".to_string(),
        ),
    }
}

/// The `token` parameter of a URL's query.
fn query_token(url: &str) -> Option<&str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
}

#[cfg(test)]
mod tests {
    use super::loopback_host;

    #[test]
    fn only_loopback_names_pass_the_host_check() {
        for ok in [
            "127.0.0.1:8123",
            "127.0.0.1",
            "localhost:8123",
            "LOCALHOST",
            "[::1]:8123",
            "[::1]",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:8123",
            "127.0.0.1.evil.example:8123",
            "localhost.evil.example",
            "127.0.0.1:x",
            "[::2]:8123",
            "",
            "10.0.0.1:8123",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }
}
