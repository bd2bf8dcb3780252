//! Evidence on tickets: a note and a photo are stored (the file in the data directory), listed
//! with the episode, served back only within the caller's area, audited; a photo too large is
//! a 413 and not an image a 415, each counted by reason.

use super::*;

/// A tiny PNG (the signature is what is checked).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

/// A `multipart/form-data` body of text fields and at most one file (`photo`).
fn multipart(fields: &[(&str, &str)], photo: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "----firegrid-test-7d3c";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((filename, bytes)) = photo {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; \
                 filename=\"{filename}\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(
    h: &Harness,
    token: &str,
    episode: u64,
    fields: &[(&str, &str)],
    photo: Option<(&str, &[u8])>,
) -> Answer {
    let (content_type, body) = multipart(fields, photo);
    let req = Request::builder()
        .method("POST")
        .uri(format!("/api/v1/episodes/{episode}/evidence"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("request");
    h.send(req).await
}

async fn raw_get(
    h: &Harness,
    token: &str,
    uri: &str,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let req = Request::builder()
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    let res = h.app.clone().oneshot(req).await.expect("infallible");
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (status, headers, bytes.to_vec())
}

#[tokio::test]
async fn a_note_and_a_photo_are_stored_listed_served_in_scope_and_audited() {
    let mut h = harness();
    h.state.evidence =
        crate::evidence::files::EvidenceDir::new(h._dir.path().join("evidence"), 1024);
    h.app = router(h.state.clone());
    h.tree().await;
    h.ok(
        "POST",
        "/api/v1/areas",
        Some(json!({"id": "g2", "parent_id": "d1", "level": "grid", "name": "Grid 2"})),
        201,
    )
    .await;
    publish(&h, alert(7, AlertKind::Opened, "g1"));
    let li = h.user("li", Role::GridWorker, Some("g1"));
    let zhao = h.user("zhao", Role::GridWorker, Some("g2"));

    let a = upload(
        &h,
        &li,
        12,
        &[("note", "已断电，更换烧焦插座")],
        Some(("fix.png", PNG)),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let e = a.json();
    assert_eq!(e["who"], "li");
    assert_eq!(e["note"], "已断电，更换烧焦插座");
    assert_eq!(e["photo"]["type"], "image/png");
    assert_eq!(e["photo"]["bytes"], PNG.len());
    let url = e["photo"]["url"].as_str().expect("url").to_string();
    // The file is in the data directory, named by its digest.
    let sha = e["photo"]["sha256"].as_str().expect("sha");
    let kept = std::fs::read(h._dir.path().join("evidence").join(format!("{sha}.png")))
        .expect("the photo is kept in the data directory");
    assert_eq!(kept, PNG);

    // A note alone.
    let a = upload(&h, &li, 12, &[("note", "owner told")], None).await;
    assert_eq!(a.status, 201, "{}", a.text);

    // Listed with the episode, in order.
    let list = h.ok("GET", "/api/v1/episodes/12/evidence", None, 200).await;
    let notes: Vec<&Value> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|e| &e["note"])
        .collect();
    assert_eq!(
        notes,
        [&json!("已断电，更换烧焦插座"), &json!("owner told")]
    );
    let e = h.ok("GET", "/api/v1/episodes/12", None, 200).await;
    assert_eq!(e["evidence"].as_array().map(Vec::len), Some(2), "{e}");

    // Served back within the area, with its type; refused outside it.
    let (status, headers, bytes) = raw_get(&h, &li, &url).await;
    assert_eq!(status, 200);
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(bytes, PNG);
    let (status, _, _) = raw_get(&h, &zhao, &url).await;
    assert_eq!(
        status, 403,
        "a worker of another cell does not see the photo"
    );
    let a = h
        .call_as(&zhao, "GET", "/api/v1/episodes/12/evidence", None)
        .await;
    assert_eq!(a.status, 403, "{}", a.text);
    let a = upload(&h, &zhao, 12, &[("note", "not mine")], None).await;
    assert_eq!(a.status, 403, "{}", a.text);
    let (status, _, _) = raw_get(&h, &li, "/api/v1/evidence/999/photo").await;
    assert_eq!(status, 404);

    // Audited.
    let audit = h
        .ok("GET", "/api/v1/audit?action=evidence.added", None, 200)
        .await;
    assert_eq!(audit.as_array().map(Vec::len), Some(2), "{audit}");
    assert_eq!(audit[1]["who"], "li", "{audit}");
    let m = h.get("/metrics").await.text;
    assert!(
        m.contains("firegrid_evidence_accepted_total{kind=\"photo\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("firegrid_evidence_accepted_total{kind=\"note\"} 2"),
        "{m}"
    );
}

#[tokio::test]
async fn too_large_not_an_image_or_empty_is_refused_and_counted() {
    let mut h = harness();
    h.state.evidence =
        crate::evidence::files::EvidenceDir::new(h._dir.path().join("evidence"), 1024);
    h.app = router(h.state.clone());
    h.tree().await;
    publish(&h, alert(7, AlertKind::Opened, "g1"));
    let token = h.token.clone();

    let mut big = PNG.to_vec();
    big.resize(1025, 0);
    let a = upload(&h, &token, 12, &[("note", "big")], Some(("big.png", &big))).await;
    assert_eq!(a.status, 413, "{}", a.text);
    assert!(a.error().contains("1024 bytes"), "{}", a.text);
    // Declared larger than the limit: refused before the body is read.
    let huge = vec![0xFF_u8; 200 * 1024];
    let a = upload(&h, &token, 12, &[], Some(("huge.jpg", &huge))).await;
    assert_eq!(a.status, 413, "{}", a.text);

    let a = upload(
        &h,
        &token,
        12,
        &[],
        Some(("x.png", b"<svg onload=alert(1)>")),
    )
    .await;
    assert_eq!(a.status, 415, "{}", a.text);
    assert!(a.error().contains("not a JPEG or PNG"), "{}", a.text);

    let a = upload(&h, &token, 12, &[("note", "  ")], None).await;
    assert_eq!(a.status, 422, "{}", a.text);
    let a = upload(&h, &token, 12, &[("who", "someone")], None).await;
    assert_eq!(a.status, 400, "{}", a.text);
    let a = h
        .call(
            "POST",
            "/api/v1/episodes/12/evidence",
            Some(json!({"note": "json"})),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.text);

    let stats = &h.state.metrics.evidence;
    assert_eq!(stats.refusals("too_large"), 2);
    assert_eq!(stats.refusals("not_image"), 1);
    assert_eq!(stats.refusals("empty"), 1);
    assert_eq!(stats.refusals("bad_form"), 2);
    let list = h.ok("GET", "/api/v1/episodes/12/evidence", None, 200).await;
    assert_eq!(list, json!([]), "nothing refused is kept");
    assert!(
        !h._dir.path().join("evidence").exists()
            || std::fs::read_dir(h._dir.path().join("evidence"))
                .expect("dir")
                .next()
                .is_none(),
        "no file of a refused upload"
    );
    let a = upload(&h, &token, 99, &[("note", "x")], None).await;
    assert_eq!(a.status, 404, "{}", a.text);
}
