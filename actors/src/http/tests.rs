use actix::prelude::*;
use actix_web::{App, test};

use super::*;
use crate::bind::BindStatus;
use crate::supervisor::UnknownBind;

/// Stands in for the supervisor: one known bind, `awcc/trx/0`.
struct FakeSupervisor;

impl Actor for FakeSupervisor {
    type Context = Context<Self>;
}

impl Handler<ListBinds> for FakeSupervisor {
    type Result = MessageResult<ListBinds>;
    fn handle(&mut self, _: ListBinds, _: &mut Context<Self>) -> Self::Result {
        MessageResult(vec![BindStatus {
            operator_id: "awcc".into(),
            direction: "trx",
            bind_id: 0,
            role: "primary",
            backup_for: None,
            owner_pod: Some("pod-a".into()),
            state: "BOUND",
            intake: "open",
            sessions: vec!["trx"],
            in_flight: 3,
            window: 100,
            queued_segments: 0,
            dispatches: 3,
            reconnect_attempts: 0,
            last_error: None,
            bound_since: None,
            actor: None,
        }])
    }
}

impl Handler<ControlBind> for FakeSupervisor {
    type Result = Result<(), UnknownBind>;
    fn handle(&mut self, msg: ControlBind, _: &mut Context<Self>) -> Self::Result {
        if msg.key.to_string() == "awcc/trx/0" {
            Ok(())
        } else {
            Err(UnknownBind(msg.key.to_string()))
        }
    }
}

const TOKEN: &str = "0123456789abcdef0123";

fn admin_state() -> AdminState {
    let fake = FakeSupervisor.start();
    AdminState {
        token: Secret::new(TOKEN),
        list: fake.clone().recipient(),
        control: fake.recipient(),
        refusals: Arc::default(),
    }
}

#[actix_web::test]
async fn admin_requires_the_bearer_token() {
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(admin_state()))
            .configure(admin),
    )
    .await;
    for auth in [
        None,
        Some("Bearer wrong-token-of-some-len"),
        Some("Basic abc"),
        Some("Bearer "),
    ] {
        let mut req = test::TestRequest::get().uri("/admin/binds");
        if let Some(auth) = auth {
            req = req.insert_header((header::AUTHORIZATION, auth));
        }
        let resp = test::call_service(&app, req.to_request()).await;
        assert_eq!(resp.status(), 401, "{auth:?}");
    }
    let req = test::TestRequest::post()
        .uri("/admin/binds/awcc/trx/0/restart")
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 401);
}

#[actix_web::test]
async fn admin_lists_and_restarts_with_the_token() {
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(admin_state()))
            .configure(admin),
    )
    .await;
    let bearer = (header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    let req = test::TestRequest::get()
        .uri("/admin/binds")
        .insert_header(bearer.clone())
        .to_request();
    let body: serde_json::Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(body["binds"][0]["inFlight"], 3);
    assert_eq!(body["binds"][0]["state"], "BOUND");
    assert_eq!(body["binds"][0]["ownerPod"], "pod-a");
    assert_eq!(body["binds"][0]["intake"], "open");

    for action in ["drain", "resume"] {
        let req = test::TestRequest::post()
            .uri(&format!("/admin/binds/awcc/trx/0/{action}"))
            .insert_header(bearer.clone())
            .to_request();
        assert_eq!(
            test::call_service(&app, req).await.status(),
            202,
            "{action}"
        );
    }
    let req = test::TestRequest::post()
        .uri("/admin/binds/awcc/trx/0/explode")
        .insert_header(bearer.clone())
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 404);

    let req = test::TestRequest::post()
        .uri("/admin/binds/awcc/trx/0/restart")
        .insert_header(bearer.clone())
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 202);
    let req = test::TestRequest::post()
        .uri("/admin/binds/awcc/trx/7/restart")
        .insert_header(bearer.clone())
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 404);
    let req = test::TestRequest::post()
        .uri("/admin/binds/awcc/both/0/restart")
        .insert_header(bearer)
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 400);
}

#[actix_web::test]
async fn ready_follows_the_binds_and_shutdown() {
    let readiness = Arc::new(Readiness::default());
    let state = ProbeState {
        readiness: readiness.clone(),
        prometheus: None,
    };
    let app =
        test::init_service(App::new().app_data(web::Data::new(state)).configure(probes)).await;
    let get = |uri: &str| test::TestRequest::get().uri(uri).to_request();
    assert_eq!(test::call_service(&app, get("/health")).await.status(), 200);
    assert_eq!(test::call_service(&app, get("/ready")).await.status(), 503);
    readiness.set_bound_for_test(2);
    let response = test::call_service(&app, get("/ready")).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["bound"], 2);
    assert_eq!(body["shuttingDown"], false);
    assert!(body["backendsDown"].is_array(), "{body}");
    readiness.begin_shutdown();
    let response = test::call_service(&app, get("/ready")).await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(body["status"], "not ready");
    assert_eq!(body["shuttingDown"], true);
    assert_eq!(test::call_service(&app, get("/health")).await.status(), 200);
}

/// The token comparison does not depend on the given token's length (both sides are
/// digested first), and accepts exactly the token.
#[actix_web::test]
async fn the_token_check_accepts_exactly_the_token_whatever_the_length_given() {
    let token = Secret::new(TOKEN);
    assert!(token_matches(TOKEN.as_bytes(), &token));
    for wrong in [
        "",
        "x",
        &TOKEN[..TOKEN.len() - 1],
        &format!("{TOKEN}x"),
        &"y".repeat(4096),
    ] {
        assert!(!token_matches(wrong.as_bytes(), &token), "{wrong:?}");
    }
}

/// A peer that keeps failing is stopped: after ten refusals within a minute its requests
/// get 429 without the token being looked at, until the minute is over; the refusals are
/// logged once a minute with a count (issue 21), each is counted in the metric.
#[actix_web::test]
async fn failed_admin_attempts_are_limited_per_peer_and_logged_once_a_minute() {
    let state = admin_state();
    let refusals = state.refusals.clone();
    let app = test::init_service(App::new().app_data(web::Data::new(state)).configure(admin)).await;
    let peer: std::net::SocketAddr = "10.1.2.3:40000".parse().unwrap();
    let other: std::net::SocketAddr = "10.9.9.9:40000".parse().unwrap();
    let call = |auth: &str, from: std::net::SocketAddr| {
        test::TestRequest::get()
            .uri("/admin/binds")
            .peer_addr(from)
            .insert_header((header::AUTHORIZATION, auth.to_owned()))
            .to_request()
    };
    for _ in 0..MAX_REFUSALS_PER_MINUTE {
        let resp = test::call_service(&app, call("Bearer wrong", peer)).await;
        assert_eq!(resp.status(), 401);
    }
    let resp = test::call_service(&app, call(&format!("Bearer {TOKEN}"), peer)).await;
    assert_eq!(resp.status(), 429, "locked out for the rest of the minute");
    let resp = test::call_service(&app, call(&format!("Bearer {TOKEN}"), other)).await;
    assert_eq!(resp.status(), 200, "another peer is not");
    assert_eq!(
        refusals.unlogged(),
        u64::from(MAX_REFUSALS_PER_MINUTE),
        "one line for the first refusal; the other nine and the 429 wait for the next line"
    );
}
