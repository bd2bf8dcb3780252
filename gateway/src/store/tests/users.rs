use super::*;
use crate::access::Role;

#[test]
fn a_token_authenticates_its_user_until_revoked() {
    let dir = tmp();
    let store = open(&db(&dir));
    let (user, token) = store
        .add_user("wang", Role::GridWorker, Some(&gid("g1")), actor())
        .unwrap();
    assert_eq!(user.area_id, Some(gid("g1")));
    let plain = token.token.expose().to_string();
    let (id, secret) = plain.split_once('.').expect("id.secret");
    assert_eq!(id, token.id);
    assert_eq!(secret.len(), 43);

    let who = store.authenticate(&plain).unwrap().expect("valid");
    assert_eq!(
        (who.user.as_str(), who.role, who.area_id.as_ref()),
        ("wang", Role::GridWorker, Some(&gid("g1")))
    );
    // A wrong secret, an unknown id, no dot, empty parts: no one.
    for bad in [
        format!("{id}.{}", "A".repeat(43)),
        format!("nosuchid.{secret}"),
        secret.to_string(),
        ".".to_string(),
        format!("{id}."),
    ] {
        assert_eq!(store.authenticate(&bad).unwrap(), None, "{bad}");
    }

    // The broker's view: the hash verifies the secret part, with the user's role and scope.
    let active = store.active_tokens().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].token_id, id);
    assert!(active[0].hash.verify(secret));
    assert_eq!(
        (
            active[0].user.as_str(),
            active[0].role,
            active[0].area_id.clone()
        ),
        ("wang", Role::GridWorker, Some(gid("g1")))
    );

    let second = store.issue_token("wang", actor()).unwrap();
    store.revoke_token(id, Actor::new("admin", T0 + 9)).unwrap();
    assert_eq!(store.authenticate(&plain).unwrap(), None);
    assert!(store.authenticate(second.token.expose()).unwrap().is_some());
    assert_eq!(store.active_tokens().unwrap().len(), 1);
    let listed = store.tokens(Some("wang")).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed
            .iter()
            .find(|t| t.id == id)
            .and_then(|t| t.revoked_ms),
        Some(T0 + 9)
    );
    assert!(matches!(
        store.revoke_token("nope", actor()),
        Err(StoreError::UnknownToken(_))
    ));
    assert!(matches!(
        store.issue_token("nobody", actor()),
        Err(StoreError::UnknownUser(_))
    ));
}

#[test]
fn users_are_checked() {
    let dir = tmp();
    let store = open(&db(&dir));
    store
        .add_user("chen", Role::Operator, None, actor())
        .unwrap();
    assert!(matches!(
        store.add_user("chen", Role::Viewer, Some(&gid("g1")), actor()),
        Err(StoreError::AlreadyExists { what: "user", .. })
    ));
    let err = store
        .add_user("zhou", Role::Installer, None, actor())
        .unwrap_err();
    assert!(err.to_string().contains("needs an area"), "{err}");
    let err = store
        .add_user("a b", Role::Admin, None, actor())
        .unwrap_err();
    assert!(err.to_string().contains("A-Z a-z 0-9 . _ @ -"), "{err}");
    assert_eq!(store.users().unwrap().len(), 1);
    assert_eq!("grid_worker".parse::<Role>(), Ok(Role::GridWorker));
    assert!(
        "root"
            .parse::<Role>()
            .unwrap_err()
            .to_string()
            .contains("admin, operator, grid_worker, installer, utility, viewer")
    );
}

proptest::proptest! {
    // Each case opens a store: a few dozen cases are plenty for a 256-bit secret.
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever a client sends as a token, authenticating answers "no one" (never panics, never
    /// admits): random text, and a real token's id with a changed secret.
    #[test]
    fn any_other_token_is_no_one(text in "\\PC{0,120}", flip in 0usize..43) {
        let dir = tmp();
        let store = open(&db(&dir));
        let (_, token) = store.add_user("wang", Role::Viewer, Some(&gid("g1")), actor()).unwrap();
        proptest::prop_assert_eq!(store.authenticate(&text).unwrap(), None);
        let plain = token.token.expose();
        let (id, secret) = plain.split_once('.').expect("id.secret");
        let mut changed: Vec<char> = secret.chars().collect();
        changed[flip] = if changed[flip] == 'A' { 'B' } else { 'A' };
        let changed: String = changed.into_iter().collect();
        proptest::prop_assert_eq!(store.authenticate(&format!("{id}.{changed}")).unwrap(), None);
    }
}
