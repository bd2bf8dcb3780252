//! What people's channels keep through the API: a DingTalk robot's signing secret is taken and
//! never shown (and only for a DingTalk webhook); a room's tenant is kept and shown.

use super::*;

#[tokio::test]
async fn a_robot_secret_is_write_only_and_a_rooms_tenant_is_kept() {
    let h = harness();
    let site = h.tree().await;
    let body = json!({"name": "Li", "area_id": "g1", "webhook_url": "https://oapi.example/robot/send?access_token=t",
        "webhook_format": "dingtalk", "webhook_secret": "SECabc"});
    let w = h.ok("POST", "/api/v1/workers", Some(body), 201).await;
    assert!(w.get("webhook_secret").is_none(), "{w}");
    let id = w["id"].as_i64().expect("id");
    let stored = h
        .state
        .store
        .get::<crate::store::WorkerFields>(&id)
        .expect("read")
        .expect("the worker");
    assert_eq!(stored.fields.webhook_secret.as_deref(), Some("SECabc"));
    let listed = h.ok("GET", "/api/v1/workers", None, 200).await;
    assert!(!listed.to_string().contains("SECabc"), "{listed}");
    let json_hook = json!({"name": "Wang", "area_id": "g1", "webhook_url": "https://hook.example/x",
        "webhook_secret": "SECabc"});
    let a = h.call("POST", "/api/v1/workers", Some(json_hook)).await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(a.error().contains("dingtalk"), "{}", a.text);

    let room = h
        .ok(
            "POST",
            "/api/v1/rooms",
            Some(json!({"site_id": site, "name": "3-302", "tenant_name": "赵", "tenant_phone": "13700002222"})),
            201,
        )
        .await;
    assert_eq!(room["tenant_phone"], "13700002222", "{room}");
    let id = room["id"].as_i64().expect("id");
    let again = h.ok("GET", &format!("/api/v1/rooms/{id}"), None, 200).await;
    assert_eq!(again["tenant_name"], "赵", "{again}");
}
