//! The grid worker's phone page in a real browser (headless `chromium` through
//! `chromium-driver`), against the real `firegrid` binary and the simulator's devices: a grid
//! worker of cell A on a 390×844 viewport sees cell A's hazard with its deadlines and not cell
//! B's, rectifies it with a note and a photo from the file input (the camera on a phone), and
//! the API then lists the note and the photo — whose bytes are the file's — with the episode.

use std::time::Instant;

use fantoccini::Locator;

use firegrid_e2e::browser::{Driver, ELEMENT, login};
use firegrid_e2e::{BrokerSetup, Gateway, Sim, WAIT, user_add};

/// Two cells, one site and room each, smoke in both rooms at +5 s.
const SCENARIO: &str = r#"name = "e2e field page"
id = "uf"
[devices]
sample_interval_ms = 500
report_interval_s = 5
heartbeat_interval_s = 60

[[street]]
id = "f"
name = "Field Street"
cells = 2
sites_per_cell = 1
rooms_per_site = 1

[[incident]]
what = "smoke"
at_s = 5
room = "f-1-1-1"
for_s = 300

[[incident]]
what = "smoke"
at_s = 5
room = "f-2-1-1"
for_s = 300
"#;

/// A 2×2 PNG: what a phone's camera gives, in small.
const PHOTO: &[u8] =
    b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02\
\x00\x00\x00\x02\x08\x02\x00\x00\x00\xfd\xd4\x9a\x73\x00\x00\x00\x11\x49\x44\x41\x54\x78\x9c\x63\
\xf8\xcf\xc0\x00\x44\x60\xe2\x3f\x03\x00\x1d\xf0\x03\xfd\xa0\x33\x09\x89\x00\x00\x00\x00\x49\x45\
\x4e\x44\xae\x42\x60\x82";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_worker_rectifies_their_cells_hazard_with_a_note_and_a_photo() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("a temp dir");
    // Smoke must be acknowledged within 60 s: the card shows the deadline.
    let gateway = Gateway::start(
        dir.path(),
        BrokerSetup::Managed,
        "[tickets]\nacknowledge_s = { smoke = 60 }\n",
    )
    .await;
    let base = format!("http://{}", gateway.api_addr);
    let mut sim = Sim::start(dir.path(), SCENARIO, &gateway, &[]);
    let driver = Driver::start().await;
    sim.until_connected(4, WAIT).await;
    let worker = user_add(gateway.config(), "uf-worker-a", "grid_worker", Some("f-1"));
    let photo_path = dir.path().join("repair.png");
    std::fs::write(&photo_path, PHOTO).expect("the photo file");

    let phone = driver.browser(390, 844).await;
    login(&phone, &base, &worker).await;
    phone
        .goto(&format!("{base}/field"))
        .await
        .expect("the field page");
    // Cell A's smoke arrives live (+5 s).
    let card = phone
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("article.card[data-category=smoke]"))
        .await
        .expect("cell A's smoke");
    // Cell B's smoke started at the same time; let both be journaled, then reload: only A's.
    firegrid_testkit::wait::until_async("both smoke alarms journaled", WAIT, || async {
        let open = gateway.episodes("open=true&category=smoke").await;
        (open.len() >= 2).then_some(())
    })
    .await;
    phone.refresh().await.expect("reload");
    let card = phone
        .wait()
        .at_most(ELEMENT)
        .for_element(Locator::Css("article.card[data-category=smoke]"))
        .await
        .unwrap_or(card);
    let cards = phone
        .find_all(Locator::Css("article.card"))
        .await
        .expect("cards");
    let mut texts = Vec::new();
    for c in &cards {
        texts.push(c.text().await.expect("a card's text"));
    }
    assert!(!texts.is_empty());
    assert!(
        texts
            .iter()
            .all(|t| t.contains("f-1") && !t.contains("f-2")),
        "only cell A's hazards: {texts:?}"
    );
    // Its deadline to acknowledge: 60 s after the start (`acknowledge_s`).
    let card_id = card.attr("id").await.expect("attr").expect("the card's id");
    let episode: u64 = card_id.trim_start_matches("card-").parse().expect("an id");
    let by: u64 = card
        .find(Locator::Css(".deadline.ack time"))
        .await
        .expect("the acknowledge deadline")
        .attr("data-ms")
        .await
        .expect("attr")
        .and_then(|ms| ms.parse().ok())
        .expect("its time");
    let started_ms = gateway.get(&format!("episodes/{episode}")).await["started_ms"]
        .as_u64()
        .expect("the start");
    assert_eq!(by, started_ms + 60_000, "acknowledge by = start + 60 s");
    let width = phone
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await
        .expect("the page's width");
    assert!(
        width.as_u64().is_some_and(|w| w <= 390),
        "no sideways scrolling: {width}"
    );

    // Rectified with a note and a photo (the file input takes the file's path).
    let input = card
        .find(Locator::Css("input[type=file][name=photo]"))
        .await
        .expect("the photo input");
    assert_eq!(
        input.attr("capture").await.expect("attr").as_deref(),
        Some("environment"),
        "the phone's back camera"
    );
    input
        .send_keys(photo_path.to_str().expect("a UTF-8 path"))
        .await
        .expect("choose the photo");
    card.find(Locator::Css("textarea[name=note]"))
        .await
        .expect("the note field")
        .send_keys("更换烟感，线路完好")
        .await
        .expect("type the note");
    card.find(Locator::Css("form.rectify button"))
        .await
        .expect("the rectify button")
        .click()
        .await
        .expect("rectify");
    let done = phone
        .wait()
        .at_most(ELEMENT)
        .for_element(Locator::Css(&format!(
            "#{card_id}[data-ticket=rectified] section.evidence img.photo"
        )))
        .await
        .expect("the card rectified, with its photo");
    // The photo shows in the page (the browser loaded it through the session): its element
    // may be in the page before its bytes are, so wait for it to be complete.
    let photo = serde_json::to_value(&done).expect("element");
    let width = firegrid_testkit::wait::until_async("the photo loaded", ELEMENT, || async {
        let state = phone
            .execute(
                "return arguments[0].complete && arguments[0].naturalWidth;",
                vec![photo.clone()],
            )
            .await
            .expect("the image's state");
        (state != serde_json::json!(false)).then_some(state)
    })
    .await;
    assert_eq!(width, serde_json::json!(2), "the 2×2 photo is shown");

    // The API lists the note and the photo, who sent them; the photo's bytes are the file's.
    let ticket = gateway.get(&format!("episodes/{episode}")).await;
    assert_eq!(ticket["ticket"], "rectified", "{ticket}");
    let evidence = gateway.get(&format!("episodes/{episode}/evidence")).await;
    let items = evidence.as_array().expect("a list");
    assert_eq!(items.len(), 1, "{evidence}");
    assert_eq!(items[0]["who"], "uf-worker-a");
    assert_eq!(items[0]["note"], "更换烟感，线路完好");
    assert_eq!(items[0]["photo"]["type"], "image/png");
    assert_eq!(items[0]["photo"]["bytes"], PHOTO.len());
    let url = items[0]["photo"]["url"].as_str().expect("the photo's URL");
    let admin = user_add(gateway.config(), "uf-admin", "admin", None);
    let bytes = reqwest::Client::new()
        .get(format!("{base}{url}"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("the photo")
        .bytes()
        .await
        .expect("its bytes");
    assert_eq!(&bytes[..], PHOTO);
    // A worker of cell B does not get it.
    let other = user_add(gateway.config(), "uf-worker-b", "grid_worker", Some("f-2"));
    let refused = reqwest::Client::new()
        .get(format!("{base}{url}"))
        .bearer_auth(&other)
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status().as_u16(), 403);

    phone.close().await.expect("close the phone");
    drop(driver);
    let _ = sim.process.interrupt().await;
    eprintln!("the field page test took {:?}", started.elapsed());
}
