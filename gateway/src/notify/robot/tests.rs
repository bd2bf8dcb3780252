use std::sync::{Arc, Mutex, PoisonError};

use super::*;
use crate::notify::alert::AlertKind;
use crate::notify::dispatch::People;
use crate::notify::people::{PeopleSettings, PersonChannel};
use crate::notify::webhook::address::AddressPolicy;
use crate::store::{Delivery, WebhookFormat};

const SECRET: &str = "SECabc123";

#[test]
fn the_signature_is_dingtalks() {
    // Computed independently (Python's hmac, hashlib, base64, urllib.parse.quote_plus).
    assert_eq!(
        sign(SECRET, 1_764_403_260_000),
        "0GLId0HYRgyEDq/B0IIfVH6JgQ+cH4kXoZf0aDw1zl0="
    );
    let url = reqwest::Url::parse("https://oapi.example/robot/send?access_token=t0k").unwrap();
    let signed = signed_url(&url, SECRET, 1_764_403_260_000);
    assert_eq!(
        signed.as_str(),
        "https://oapi.example/robot/send?access_token=t0k&timestamp=1764403260000\
         &sign=0GLId0HYRgyEDq%2FB0IIfVH6JgQ%2BcH4kXoZf0aDw1zl0%3D"
    );
    // Signed again (a retry): fresh values, not a second pair.
    let again = signed_url(&signed, SECRET, 1_764_403_261_000);
    assert_eq!(again.query_pairs().filter(|(k, _)| k == "sign").count(), 1);
    assert_eq!(verify(&again, SECRET, 1_764_403_261_000, 3_600_000), Ok(()));
}

#[test]
fn the_check_refuses_another_secret_a_stale_time_or_no_signature() {
    let url = reqwest::Url::parse("https://oapi.example/robot/send?access_token=t").unwrap();
    let signed = signed_url(&url, SECRET, 1_000_000_000);
    assert_eq!(
        verify(&signed, "SECother", 1_000_000_000, 3_600_000),
        Err("sign does not match")
    );
    assert_eq!(
        verify(&signed, SECRET, 1_000_000_000 + 3_600_001, 3_600_000),
        Err("timestamp too far from now")
    );
    assert_eq!(verify(&url, SECRET, 1, 3_600_000), Err("no timestamp"));
}

/// What the local robot saw: each request's URL and whether it took it.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// A local DingTalk robot with "加签" on: it checks each request's signature as DingTalk
/// does (within an hour), and answers `errcode` 0 or 310000.
async fn robot() -> (std::net::SocketAddr, Seen) {
    use axum::extract::{OriginalUri, State};
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/robot/send",
            axum::routing::post(
                |State(seen): State<Seen>, OriginalUri(uri): OriginalUri, body: String| async move {
                    let url = reqwest::Url::parse(&format!("http://robot{uri}")).expect("url");
                    let checked = verify(&url, SECRET, crate::clock::now_ms(), 3_600_000);
                    let text: serde_json::Value = serde_json::from_str(&body).expect("json body");
                    assert_eq!(text["msgtype"], "text");
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((uri.to_string(), checked.is_ok()));
                    axum::Json(match checked {
                        Ok(()) => serde_json::json!({"errcode": 0, "errmsg": "ok"}),
                        Err(why) => serde_json::json!({"errcode": 310_000, "errmsg": why}),
                    })
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

fn delivery(target: String) -> Delivery {
    Delivery {
        id: 1,
        notification_id: 7,
        episode_id: 12,
        kind: AlertKind::Opened,
        area_id: "grid-7".into(),
        worker_id: 3,
        channel: PersonChannel::Webhook,
        format: WebhookFormat::Dingtalk,
        target,
        body: serde_json::json!({"msgtype": "text", "text": {"content": "火警"}}).to_string(),
        created_ms: 0,
        attempts: 0,
        next_attempt_ms: 0,
        delivered_ms: None,
        stopped_ms: None,
        last_error: None,
    }
}

#[tokio::test]
async fn a_signed_robot_takes_signed_requests_and_refuses_others() {
    let (addr, seen) = robot().await;
    let people =
        People::new(PeopleSettings::default(), AddressPolicy::AllowPrivate, None).expect("client");
    let d = delivery(format!("http://{addr}/robot/send?access_token=t0k"));
    people
        .post(&d, Some(SECRET))
        .await
        .expect("the robot takes a signed request");
    let wrong = people.post(&d, Some("SECwrong")).await;
    assert!(
        wrong
            .as_ref()
            .is_err_and(|e| e.contains("errcode 310000") && e.contains("sign does not match")),
        "{wrong:?}"
    );
    let unsigned = people.post(&d, None).await;
    assert!(
        unsigned.as_ref().is_err_and(|e| e.contains("no timestamp")),
        "{unsigned:?}"
    );
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert_eq!(
        seen.iter().map(|(_, ok)| *ok).collect::<Vec<_>>(),
        [true, false, false]
    );
    assert!(
        seen[0].0.contains("access_token=t0k&timestamp="),
        "{seen:?}"
    );
}
