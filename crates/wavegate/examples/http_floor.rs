//! The floor of `bench/unleash-http.sh`: the least an HTTP server on this stack can do per
//! request. A minimal axum server (the same tokio runtime, hyper and axum versions as
//! `wavegate serve`) that reads each request's body and answers every request, whatever its
//! method and path, with one fixed JSON body (in the bench, a copy of wavegate's answer to the
//! same cell, so the bytes on the wire are the same). Each HTTP cell is reported as a share of
//! this floor, measured in the same run on the same core.
//!
//! ```sh
//! cargo run --release --example http_floor -- 127.0.0.1:18471 body.json
//! ```

use axum::body::Bytes;
use axum::http::header;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(body_file), None) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: http_floor LISTEN_ADDRESS BODY_FILE");
    };
    let body = Bytes::from(
        std::fs::read(&body_file).map_err(|e| anyhow::anyhow!("reading {body_file}: {e}"))?,
    );
    let app = axum::Router::new().fallback(move |_request: Bytes| {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], body) }
    });
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
    eprintln!("http_floor listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
