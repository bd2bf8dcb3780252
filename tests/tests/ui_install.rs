//! The installer's page in a real browser (Debian's `chromium` through `chromium-driver`),
//! against the real `firegrid` binary and a simulated device running the real firmware: an
//! installer on a phone-sized viewport finds the device, saves its binding, starts
//! commissioning, runs the self-test and watches the result arrive with its latencies (no
//! reload), issues the commissioning record, prints it as a page and downloads its file, which
//! `firegrid record verify` accepts.

use std::time::Duration;

use fantoccini::Locator;

use firegrid_e2e::browser::{Driver, ELEMENT, fetch, login};
use firegrid_e2e::{BrokerSetup, Gateway, Sim, WAIT, binary, user_add};

const SCENARIO: &str = r#"name = "e2e installer page"
[devices]
sample_interval_ms = 500
report_interval_s = 5
heartbeat_interval_s = 5

[[street]]
id = "i"
name = "Install Street"
cells = 1
sites_per_cell = 1
rooms_per_site = 1
smoke_alarms = false
"#;

const DEVICE: &str = "i-1-1-1-m";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installer_commissions_a_simulated_device_and_downloads_a_verified_record() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let gateway = Gateway::start(dir.path(), BrokerSetup::Managed, "").await;
    let base = format!("http://{}", gateway.api_addr);
    let installer = user_add(gateway.config(), "ui-installer", "installer", Some("i-1"));
    let mut sim = Sim::start(dir.path(), SCENARIO, &gateway, &[]);
    let driver = Driver::start().await;
    sim.until_connected(1, WAIT).await;

    let phone = driver.browser(390, 844).await;
    let session = login(&phone, &base, &installer).await;
    phone
        .goto(&format!("{base}/install?device={DEVICE}"))
        .await
        .expect("the installer page");
    // The binding as it is, saved through the form.
    phone
        .find(Locator::Css("form.binding button[type=submit]"))
        .await
        .expect("the binding form")
        .click()
        .await
        .expect("save the binding");
    phone
        .wait()
        .at_most(ELEMENT)
        .for_element(Locator::Css("p.ok[role=status]"))
        .await
        .expect("saved");
    // Commissioning: the device leaves service; its alarms are the installer's.
    phone
        .find(Locator::Id("to-commissioned"))
        .await
        .expect("the commissioning button")
        .click()
        .await
        .expect("start commissioning");
    phone
        .wait()
        .at_most(ELEMENT)
        .for_element(Locator::Id("run-self-test"))
        .await
        .expect("the test buttons of a commissioned device")
        .click()
        .await
        .expect("run the self-test");
    // The row turns from waiting to passed by itself (app.js reloads it), with latencies.
    let row = phone
        .wait()
        .at_most(WAIT)
        .every(Duration::from_millis(200))
        .for_element(Locator::Css("tr.test[data-result='passed']"))
        .await
        .expect("the self-test's result on the page without a reload");
    let total = row
        .find(Locator::Css("td.total"))
        .await
        .expect("the total latency")
        .text()
        .await
        .expect("its text");
    assert!(total.ends_with(" ms"), "a measured latency: {total:?}");
    eprintln!("self-test on the installer page: request → installer {total}");

    // The record: issued, shown as a printable page, downloaded.
    // The button, below the tests on the phone's screen: scrolled to, as a thumb would, and
    // tapped (a WebDriver click, which fails if anything covers it).
    phone
        .execute(
            "document.getElementById('issue-record').scrollIntoView({block: 'center'});",
            vec![],
        )
        .await
        .expect("scroll to the record button");
    phone
        .find(Locator::Id("issue-record"))
        .await
        .expect("the record button")
        .click()
        .await
        .expect("issue the record");
    let found = phone
        .wait()
        .at_most(ELEMENT)
        .for_element(Locator::Id("record-device"))
        .await;
    let shown = match found {
        Ok(e) => e,
        Err(e) => panic!(
            "the record page: {e}: at {}\n{}",
            phone
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default(),
            firegrid_e2e::tail(&gateway.log(), 30)
        ),
    }
    .text()
    .await
    .expect("its device");
    assert_eq!(shown, DEVICE);
    let href = phone
        .find(Locator::Id("download-record"))
        .await
        .expect("the download link")
        .attr("href")
        .await
        .expect("its href")
        .expect("a link");
    let (status, file) = fetch(&base, &href, &session).await;
    assert_eq!(status, 200, "{file}");
    let path = dir.path().join("record.json");
    std::fs::write(&path, &file).expect("write the record");
    let out = std::process::Command::new(binary("firegrid"))
        .args(["record", "verify"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("firegrid record verify runs");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(DEVICE), "{said}");

    // The devices page shows the roster columns.
    let (status, page) = fetch(&base, "/devices", &session).await;
    assert_eq!(status, 200);
    assert!(page.contains("td class=\"firmware\""), "roster columns");
    let _ = phone.close().await;
}
