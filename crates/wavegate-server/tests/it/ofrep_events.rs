//! OFREP's event stream: bulk responses advertise it, it sends `refetchEvaluation` only, a
//! refetch after a notice sees the change, and its tickets are scoped and unforgeable.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::stream::Reader;
use crate::support::{ADMIN, TestApp, spawn_app};

const FLAG: &str = "flags:\n  banner:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    environments:\n      prod: { enabled: true }\n      dev: { enabled: true }\n";

async fn bulk(app: &TestApp, token: &str) -> crate::support::Reply {
    let headers = [("content-type", "application/json"), ("host", "flags.example.com:8470")];
    app.bulk(token, &headers, br#"{"context": {"targetingKey": "u1"}}"#).await
}

/// The advertised stream's path and query (the test talks to the router, not the origin).
fn stream_path(body: &Value) -> String {
    let url = body["eventStreams"][0]["url"].as_str().unwrap();
    url.strip_prefix("http://flags.example.com:8470").expect("origin from the Host header").into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_responses_advertise_a_refetch_stream_that_fires_on_changes() {
    let app = spawn_app().await;
    app.apply_yaml(FLAG).await;
    let client = app.token("client-sdk", &["prod"]).await;
    let r = bulk(&app, &client).await;
    assert_eq!(r.status, StatusCode::OK);
    let streams = &r.body["eventStreams"];
    assert_eq!(
        (streams[0]["type"].clone(), streams[0]["inactivityDelaySec"].clone()),
        (json!("sse"), json!(120))
    );
    let path = stream_path(&r.body);
    assert!(path.starts_with("/ofrep/v1/events?environment=prod&ticket=tok_"), "{path}");
    assert!(!path.contains(&client), "the token itself never goes into a URL");
    assert_eq!(r.body["flags"][0]["value"], false);

    // EventSource sends no Authorization header: the ticket alone opens the stream.
    let mut events = Reader::open_path(app.router.clone(), &path, None, &[]).await.unwrap();
    app.apply_yaml(&FLAG.replace("default: \"off\"", "default: \"on\"")).await;
    let e = events.next_event().await;
    assert_eq!(e.data["type"], "refetchEvaluation", "{e:?}");
    assert!(e.data["etag"].is_string() && e.data["lastModified"].is_i64(), "{e:?}");
    assert_eq!(e.data.as_object().unwrap().len(), 3, "a notification only: no flag data");
    // A refetch after the notice sees the change (the OFREP providers add these parameters).
    let r = app
        .raw(
            Method::POST,
            "/ofrep/v1/evaluate/flags?flagConfigEtag=x&flagConfigLastModified=1",
            Some(&client),
            &[("content-type", "application/json")],
            br#"{"context": {"targetingKey": "u1"}}"#.to_vec(),
        )
        .await;
    assert_eq!(r.body["flags"][0]["value"], true);

    // Changes that cannot alter answers (a token created) send nothing; the next flag change does.
    app.token("server-sdk", &["prod"]).await;
    app.apply_yaml(FLAG).await;
    let e = events.next_event().await;
    assert_eq!(e.data["type"], "refetchEvaluation");
}

#[tokio::test]
async fn tickets_are_scoped_unforgeable_and_die_with_their_token() {
    let app = spawn_app().await;
    app.apply_yaml(FLAG).await;
    let r = app.mint(ADMIN, json!({"kind": "client-sdk", "environments": ["prod"]})).await;
    let (client, id) =
        (r.body["token"].as_str().unwrap().to_owned(), r.body["id"].as_str().unwrap().to_owned());
    let path = stream_path(&bulk(&app, &client).await.body);
    let status = |p: String| {
        let router = app.router.clone();
        async move { Reader::open_path(router, &p, None, &[]).await.err().map(|e| e.0) }
    };
    assert_eq!(status(path.clone()).await, None, "the advertised ticket works");
    let flipped = if path.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{flipped}", &path[..path.len() - 1]);
    assert_eq!(status(forged).await, Some(StatusCode::UNAUTHORIZED));
    let other_env = path.replace("environment=prod", "environment=dev");
    assert_eq!(
        status(other_env).await,
        Some(StatusCode::UNAUTHORIZED),
        "a prod ticket is not a dev ticket"
    );
    assert_eq!(
        status("/ofrep/v1/events?environment=prod".into()).await,
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        status("/ofrep/v1/events?environment=nowhere&ticket=x".into()).await,
        Some(StatusCode::UNPROCESSABLE_ENTITY)
    );
    // A server SDK may use its header instead of a ticket.
    let sdk = app.token("server-sdk", &["prod"]).await;
    let r =
        Reader::open_path(app.router.clone(), "/ofrep/v1/events?environment=prod", Some(&sdk), &[])
            .await;
    assert!(r.is_ok());
    // Revoking the token ends its tickets.
    let r = app.admin(Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    assert_eq!(status(path).await, Some(StatusCode::UNAUTHORIZED));
    let _ = ADMIN;
}
