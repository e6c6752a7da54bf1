//! Unleash's client and frontend APIs through the router: the features document (read by
//! Yggdrasil, the engine inside the Unleash SDKs, and compared with OFREP), ETags, Unleash's
//! token shapes, registration, metrics feeding a rollout's arms, the frontend API, and
//! prerequisites validated across flags.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use unleash_yggdrasil::{EngineState, UpdateMessage};
use wavegate_testkit::fixtures::UNLEASH_FLAGS as FLAGS;
use wavegate_testkit::signals::arm_exposures;

use crate::support::{TestApp, guarded_plan, spawn_app};

async fn setup() -> (TestApp, String) {
    let app = spawn_app().await;
    let r = app.apply_yaml(FLAGS).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let sdk = app.token("server-sdk", &["prod"]).await;
    (app, sdk)
}

async fn get(
    app: &TestApp,
    path: &str,
    auth: &str,
    extra: &[(&str, &str)],
) -> crate::support::Reply {
    let mut headers = vec![("authorization", auth)];
    headers.extend_from_slice(extra);
    app.raw(Method::GET, path, None, &headers, Vec::new()).await
}

/// POSTs `body` with `auth` as the whole `Authorization` header (Unleash's token shape).
async fn post(app: &TestApp, path: &str, auth: &str, body: Vec<u8>) -> crate::support::Reply {
    app.raw(Method::POST, path, None, &[("authorization", auth)], body).await
}

fn ygg_context(i: usize) -> (Value, unleash_yggdrasil::Context) {
    let country = ["NO", "SE", "DE", "KP", "US"][i % 5];
    let plan = ["pro", "free"][i % 2];
    let age = (10 + i % 40).to_string();
    let user = format!("user-{i}");
    let wave = json!({"targetingKey": user, "country": country, "plan": plan, "age": age});
    let ygg = unleash_yggdrasil::Context {
        user_id: Some(user),
        properties: Some(
            [("country", country), ("plan", plan), ("age", age.as_str())]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ),
        ..Default::default()
    };
    (wave, ygg)
}

#[tokio::test]
async fn client_features_agree_with_ofrep_through_yggdrasil() {
    let (app, sdk) = setup().await;
    let r = get(
        &app,
        "/api/client/features",
        &sdk,
        &[("unleash-appname", "it"), ("unleash-interval", "undefined")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["version"], 2);
    let names: Vec<&str> = r.body["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["beta-banner", "beta-child", "colour", "nordic", "rollout"]);
    let child = &r.body["features"][1];
    assert_eq!(child["dependencies"], json!([{"feature": "beta-banner"}]));
    let colour = &r.body["features"][2];
    let rollouts: Vec<&str> = colour["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["parameters"]["rollout"].as_str())
        .collect();
    assert_eq!(rollouts, ["33", "66", "100"], "a split is a chain at cumulative percentages");
    assert_eq!(
        colour["strategies"][2]["variants"][0]["payload"],
        json!({"type": "json", "value": "{\"hex\":\"#00f\"}"})
    );

    let engine = EngineState::default();
    let features = serde_json::from_value(r.body.clone()).unwrap();
    assert!(engine.take_state(UpdateMessage::FullResponse(features)).is_none());
    let client = app.token("client-sdk", &["prod"]).await;
    let mut on = 0;
    for i in 0..300 {
        let (wctx, yctx) = ygg_context(i);
        let bulk = app
            .call(
                Method::POST,
                "/ofrep/v1/evaluate/flags",
                Some(&client),
                Some(json!({"context": wctx})),
            )
            .await;
        for f in bulk.body["flags"].as_array().unwrap() {
            let key = f["key"].as_str().unwrap();
            if key == "colour" {
                let v = engine.get_variant(key, &yctx, &None);
                assert_eq!(v.name, f["variant"].as_str().unwrap(), "colour for user-{i}");
            } else {
                let y = engine.is_enabled(key, &yctx, &None);
                assert_eq!(y, f["value"] == json!(true), "{key} for user-{i}: {f}");
                on += usize::from(y);
            }
        }
    }
    assert!(on > 50, "some flags are on for some contexts ({on})");
}

#[tokio::test]
async fn etags_tokens_and_filters() {
    let (app, sdk) = setup().await;
    let r = get(&app, "/api/client/features", &sdk, &[]).await;
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let again = get(&app, "/api/client/features", &sdk, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    let weak = format!("W/{etag}");
    let again = get(&app, "/api/client/features", &sdk, &[("if-none-match", &weak)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED, "weak comparison (RFC 9110)");
    // Unleash's token shape names the environment; the secret is the wavegate token.
    let all_envs = app.token("server-sdk", &["*"]).await;
    let shaped = format!("default:prod.{all_envs}");
    let r = get(&app, "/api/client/features", &shaped, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "same document for the same environment");
    let r = get(&app, "/api/client/features", &all_envs, &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["message"].as_str().unwrap().contains("X-Wavegate-Environment"));
    let r = get(&app, "/api/client/features", &format!("default:nowhere.{all_envs}"), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(
        get(&app, "/api/client/features", "nope", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Filters.
    let r = get(&app, "/api/client/features?namePrefix=beta&project=default", &sdk, &[]).await;
    assert_eq!(r.body["features"].as_array().unwrap().len(), 2);
    assert_ne!(r.headers["etag"].to_str().unwrap(), etag);
    let r = get(&app, "/api/client/features?project=other", &sdk, &[]).await;
    assert_eq!(r.body["features"], json!([]));
    let r = get(&app, "/api/client/features/nordic", &sdk, &[]).await;
    assert_eq!(r.body["name"], "nordic");
    assert_eq!(
        get(&app, "/api/client/features/none", &sdk, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    // A change is a new document.
    app.apply_yaml(&FLAGS.replace("values: [NO, SE, DK]", "values: [NO, SE]")).await;
    let r = get(&app, "/api/client/features", &sdk, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn register_and_metrics_feed_the_rollout() {
    let (app, sdk) = setup().await;
    let post = |path: &'static str, body: Value| {
        let sdk = sdk.clone();
        let app = &app;
        async move {
            app.raw(
                Method::POST,
                path,
                None,
                &[("authorization", &sdk), ("content-type", "application/json")],
                serde_json::to_vec(&body).unwrap(),
            )
            .await
        }
    };
    let r = post("/api/client/register", json!({"appName": "shop", "instanceId": "i-1", "interval": 15, "strategies": ["default"], "started": "2026-11-23T10:00:00Z"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = post("/api/client/register", json!({"instanceId": "i-1"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "appName is required");

    // A rollout on `nordic`: its metrics become exposures by arm.
    let r = app.post_plan(&guarded_plan("p1", "nordic")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = app.start("p1").await;
    let metrics = json!({"appName": "shop", "instanceId": "i-1", "connectionId": "c-1", "platformName": "CPython",
        "bucket": {"start": "2026-11-23T10:00:00Z", "stop": "2026-11-23T10:01:00Z",
                   "toggles": {"nordic": {"yes": 30, "no": 270, "variants": {}}, "colour": {"yes": 5, "no": 0, "variants": {"red": 5}}}}});
    let r = post("/api/client/metrics", metrics).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let status = app.rollout(&id).await;
    let n = |arm: &str| arm_exposures(&status, arm);
    assert_eq!((n("treatment"), n("control")), (Some(30.0), Some(270.0)), "{status}");
    let r = post(
        "/api/client/metrics",
        json!({"appName": "shop", "bucket": {"toggles": {"nordic": {"yes": -1}}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "negative counts are refused");
    let r = post("/api/client/metrics", json!({"appName": "shop"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a bucket is required");
}

#[tokio::test]
async fn frontend_api_evaluates_server_side() {
    let (app, _) = setup().await;
    let client = app.token("client-sdk", &["prod"]).await;
    let r = get(
        &app,
        "/api/frontend?userId=user-3&properties%5Bcountry%5D=NO&age=30&plan=free",
        &client,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let names: Vec<&str> =
        r.body["toggles"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    // user-3 is a listed beta key; Norway and 30 years make `nordic`; `colour` is always on.
    assert!(
        names.contains(&"beta-banner")
            && names.contains(&"beta-child")
            && names.contains(&"nordic"),
        "{names:?}"
    );
    let colour =
        r.body["toggles"].as_array().unwrap().iter().find(|t| t["name"] == "colour").unwrap();
    let ofrep = app.ofrep(&client, "colour", json!({"targetingKey": "user-3"})).await.body;
    assert_eq!(colour["variant"]["name"], ofrep["variant"]);
    assert_eq!(colour["variant"]["enabled"], true);
    // Off for this context: not listed by /api/frontend, listed by /all.
    let context = json!({"context": {"userId": "user-4", "properties": {"plan": "free"}}});
    let r = post(&app, "/api/frontend", &client, serde_json::to_vec(&context).unwrap()).await;
    let names: Vec<&str> =
        r.body["toggles"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(!names.contains(&"beta-child"), "prerequisite unmet: {names:?}");
    let all = get(&app, "/api/frontend/all?userId=user-4", &client, &[]).await;
    let child = all.body["toggles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "beta-child")
        .unwrap()
        .clone();
    assert_eq!(
        (child["enabled"].clone(), child["variant"]["name"].clone()),
        (json!(false), json!("disabled"))
    );
    let r =
        get(&app, "/api/frontend/features/nordic?userId=u&country=SE&age=40", &client, &[]).await;
    assert_eq!((r.status, r.body["enabled"].clone()), (StatusCode::OK, json!(true)));
    let r = get(&app, "/api/frontend/features/nordic?userId=u&country=DE", &client, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = post(&app, "/api/frontend", &client, b"{not json".to_vec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = post(&app, "/api/frontend/client/metrics", &client, b"{}".to_vec()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

/// Issue 21, item 4: `/api/frontend` answers carry an ETag (of their bytes, since they depend
/// on the context) and a client that sends it back gets 304 until its answer changes.
#[tokio::test]
async fn frontend_answers_carry_etags_and_304() {
    let (app, _) = setup().await;
    let client = app.token("client-sdk", &["prod"]).await;
    let path = "/api/frontend?userId=user-3&country=NO&age=30";
    let first = get(&app, path, &client, &[]).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let again = get(&app, path, &client, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers["etag"].to_str().unwrap(), etag);
    let weak = format!("W/{etag}");
    let again = get(&app, path, &client, &[("if-none-match", &weak)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED, "weak comparison (RFC 9110)");
    // Another context's answer differs, so the same tag is not current for it.
    let other = "/api/frontend?userId=user-4&country=DE&age=30";
    let r = get(&app, other, &client, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(r.headers["etag"].to_str().unwrap(), etag);
    // A change that alters this context's answer ends the 304s.
    let off = FLAGS.replace("values: [NO, SE, DK]", "values: [SE, DK]");
    assert_ne!(off, FLAGS, "the fixture lists Norway");
    assert_eq!(app.apply_yaml(&off).await.status, StatusCode::OK);
    let r = get(&app, path, &client, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // One feature's answer is tagged too.
    let one = "/api/frontend/features/colour?userId=user-3";
    let r = get(&app, one, &client, &[]).await;
    let tag = r.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        get(&app, one, &client, &[("if-none-match", &tag)]).await.status,
        StatusCode::NOT_MODIFIED
    );
}

/// Issue 21, item 5: flag names outside ASCII (Unleash allows them) are flags here too,
/// through the admin API, OFREP and the Unleash surfaces; white space still is not.
#[tokio::test]
async fn flag_keys_may_hold_characters_outside_ascii() {
    let (app, sdk) = setup().await;
    let key = "Feature.UTF-8.😊_φriend_你好";
    let yaml = format!(
        "flags:\n  \"{key}\":\n    variants: {{ \"on\": true, \"off\": false }}\n    default: \"on\"\n"
    );
    let r = app.apply_yaml(&yaml).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Percent-encoded, as clients put a key in a URL path.
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = app.admin(Method::GET, &format!("/api/v1/flags/{encoded}"), None).await;
    assert_eq!((r.status, r.body["key"].clone()), (StatusCode::OK, json!(key)), "{:?}", r.body);
    let r = app.ofrep(&sdk, &encoded, json!({"targetingKey": "u"})).await;
    assert_eq!((r.status, r.body["value"].clone()), (StatusCode::OK, json!(true)), "{:?}", r.body);
    let doc = get(&app, "/api/client/features", &sdk, &[]).await.body;
    assert!(doc["features"].as_array().unwrap().iter().any(|f| f["name"] == key), "{doc}");
    let client = app.token("client-sdk", &["prod"]).await;
    let r = get(&app, &format!("/api/frontend/features/{encoded}?userId=u"), &client, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let bad = "flags:\n  \"has space\":\n    variants: { \"on\": true }\n    default: \"on\"\n";
    assert_eq!(app.apply_yaml(bad).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.admin(Method::GET, "/api/v1/audit/verify", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn prerequisites_are_validated_across_flags() {
    let (app, _) = setup().await;
    let bad = "flags:\n  orphan:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    prerequisites: [{ flag: missing }]\n";
    let r = app.apply_yaml(bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["field"], "flags.orphan.prerequisites[0].flag");
    let chain = "flags:\n  grandchild:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    prerequisites: [{ flag: beta-child }]\n";
    let r = app.apply_yaml(chain).await;
    assert!(r.body["message"].as_str().unwrap().contains("one level deep"), "{:?}", r.body);
    let variants = "flags:\n  v:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    prerequisites: [{ flag: colour, variants: [purple] }]\n";
    let r = app.apply_yaml(variants).await;
    assert!(r.body["message"].as_str().unwrap().contains("no variant \"purple\""), "{:?}", r.body);
    let r = app.admin(Method::POST, "/api/v1/flags/beta-banner/archive", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("beta-child"));
    // A parent written alone is checked against the flags that depend on it: it may not gain
    // prerequisites of its own, nor lose a variant a child names.
    let parent_with_parent = "flags:\n  beta-banner:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    prerequisites: [{ flag: colour }]\n";
    let r = app.apply_yaml(parent_with_parent).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["field"], "flags.beta-child.prerequisites[0].flag", "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("one level deep"), "{:?}", r.body);
    let painted = "flags:\n  paint:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    prerequisites: [{ flag: colour, variants: [green] }]\n";
    assert_eq!(app.apply_yaml(painted).await.status, StatusCode::OK);
    let no_green = "flags:\n  colour:\n    variants: { red: { hex: \"#f00\" }, blue: { hex: \"#00f\" } }\n    default: red\n";
    let r = app.apply_yaml(no_green).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["field"], "flags.paint.prerequisites[0].variants[0]", "{:?}", r.body);
    // Written together, the child and its parent are checked as they will both be.
    let together = format!(
        "{no_green}  paint:\n    variants: {{ \"on\": true, \"off\": false }}\n    default: \"off\"\n    prerequisites: [{{ flag: colour, variants: [blue] }}]\n"
    );
    let r = app.apply_yaml(&together).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // OFREP serves the child's disabled variant with reason DISABLED when the parent is off.
    let client = app.token("client-sdk", &["prod"]).await;
    let r = app.ofrep(&client, "beta-child", json!({"targetingKey": "user-4"})).await.body;
    assert_eq!((r["value"].clone(), r["reason"].clone()), (json!(false), json!("DISABLED")));
    let r = app.ofrep(&client, "beta-child", json!({"targetingKey": "user-7"})).await.body;
    assert_eq!((r["value"].clone(), r["reason"].clone()), (json!(true), json!("STATIC")));
}

#[tokio::test]
async fn sub_percent_splits_are_exported_rounded_down_and_flagged() {
    let (app, sdk) = setup().await;
    let fine = "flags:\n  fine:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    environments:\n      prod:\n        enabled: true\n        rules:\n          - { split: { \"on\": 12.5%, \"off\": 87.5% } }\n";
    assert_eq!(app.apply_yaml(fine).await.status, StatusCode::OK);
    let r = app.admin(Method::GET, "/api/v1/flags/fine", None).await;
    assert_eq!(r.body["unleash_approximate"], true, "{:?}", r.body);
    let note = r.body["unleash_notes"]["prod"][0].as_str().unwrap();
    assert!(note.contains("12.5%") && note.contains("rounded down to 12%"), "{note}");
    let r = app.admin(Method::GET, "/api/v1/flags/nordic", None).await;
    assert_eq!(
        (r.body["unleash_approximate"].clone(), r.body.get("unleash_notes")),
        (json!(false), None)
    );
    let doc = get(&app, "/api/client/features/fine", &sdk, &[]).await.body;
    assert_eq!(doc["strategies"][0]["parameters"]["rollout"], "12");
}

/// Issue 21 item 1: the preflight of `/api/frontend` allows the headers Unleash's frontend SDK
/// (unleash-proxy-client) sends on every request, so a page on another origin gets its toggles.
#[tokio::test]
async fn the_frontend_preflight_allows_the_unleash_sdk_headers() {
    let (app, _) = setup().await;
    let asked = "authorization,content-type,unleash-appname,unleash-sdk,unleash-connection-id";
    for path in ["/api/frontend", "/api/frontend/features/checkout"] {
        let headers = [
            ("origin", "https://shop.example.com"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", asked),
        ];
        let r = app.raw(Method::OPTIONS, path, None, &headers, vec![]).await;
        assert!(r.status.is_success(), "{path}: {}", r.status);
        assert_eq!(r.headers["access-control-allow-origin"], "https://shop.example.com");
        let allowed =
            r.headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
        for h in asked.split(',') {
            assert!(allowed.contains(h), "{path}: {h} not in {allowed}");
        }
    }
}
