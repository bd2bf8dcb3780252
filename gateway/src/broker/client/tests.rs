//! Unit tests of the client's pieces (no broker).
use std::time::Duration;

use super::link::backoff;
use super::*;

#[test]
fn backoff_doubles_with_jitter_and_caps() {
    let (min, max) = (Duration::from_millis(100), Duration::from_secs(10));
    for _ in 0..100 {
        let d0 = backoff(0, min, max);
        assert!(d0 >= Duration::from_millis(50) && d0 <= min, "{d0:?}");
        let d3 = backoff(3, min, max);
        assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
        let d40 = backoff(40, min, max);
        assert!(d40 >= max / 2 && d40 <= max, "{d40:?}");
    }
}

#[test]
fn config_validation() {
    let ok = ClientConfig::new("127.0.0.1", 1883, "firegrid-gw1");
    assert!(ok.validate().is_ok());
    let mut c = ok.clone();
    c.client_id = "has/slash".into();
    assert!(c.validate().is_err());
    let mut c = ok.clone();
    c.filters = vec!["a/#/b".into()];
    assert!(c.validate().is_err());
    let mut c = ok.clone();
    c.max_packet_size = 1024;
    assert!(c.validate().is_err());
    let mut c = ok.clone();
    c.share_group = Some("gw".into());
    assert_eq!(
        c.subscription_filters()[0],
        "$share/gw/firegrid/v1/dev/+/telemetry"
    );
    let c = ClientConfig {
        credentials: Some(Credentials {
            username: Some("u".into()),
            password: "secret".into(),
        }),
        ..ok
    };
    assert!(!format!("{c:?}").contains("secret"));
}
