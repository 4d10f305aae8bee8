//! The controller's logins end to end: users and roles, CSRF, the failure limit, and HTTPS off
//! loopback with secure cookies.

use roomready_controller::users::{Role, Users};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_testkit::http::{Http, hidden, meta};
use roomready_tests::console::Console;

use crate::controller::shutdown;

pub(crate) fn users_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("users");
    let mut users = Users::default();
    users
        .add("olga", Role::Operator, "operator-pass")
        .expect("add");
    users.add("vic", Role::Viewer, "viewer-pass").expect("add");
    users.save(&path).expect("save");
    path
}

/// Logs `http` in as `name` and returns the session's CSRF token.
pub(crate) fn log_in(http: &Http, name: &str, password: &str) -> String {
    let form = http.get("/login");
    assert_eq!(form.status, 200);
    let csrf = hidden(&form.body, "csrf").expect("the login form carries a token");
    let done = http.post_form(
        "/login",
        &[
            ("csrf", &csrf),
            ("name", name),
            ("password", password),
            ("next", "/findings"),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), Some("/findings"));
    let cookie = done.header("set-cookie").expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    meta(&http.get("/").body, "csrf-token").expect("a token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_roles_csrf_and_the_failure_limit() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |config, dir| {
        config.users_file = Some(users_file(dir));
    })
    .await;
    console.subscribed().await;
    let (devices, _) = console.fleet(&broker.url(), 2).await;
    let http = console.http.clone();
    http.run(|http| {
        // Nothing without a login: pages go to the login, the API answers 401.
        let page = http.get("/devices/mtr-0001");
        assert_eq!(page.status, 303);
        assert_eq!(
            page.header("location"),
            Some("/login?next=%2Fdevices%2Fmtr-0001")
        );
        let api = http.get("/api/v1/summary");
        assert_eq!(api.status, 401);
        assert!(
            api.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Basic"))
        );
        assert_eq!(http.get("/metrics").status, 401);
        assert_eq!(http.get("/healthz").status, 200);

        // A viewer reads, sees no command buttons, and cannot send one.
        let viewer = http.fresh();
        let csrf = log_in(&viewer, "vic", "viewer-pass");
        let device = viewer.get("/devices/mtr-0001").body;
        assert!(
            !device.contains("form class=\"command\""),
            "a viewer sees no command forms"
        );
        let refused = viewer.post_json(
            "/api/v1/devices/mtr-0001/commands",
            &serde_json::json!({"command": "check_now"}),
            Some(&csrf),
        );
        assert_eq!(refused.status, 403, "{}", refused.body);

        // An operator can, with the session's token only.
        let operator = http.fresh();
        let csrf = log_in(&operator, "olga", "operator-pass");
        assert!(
            operator
                .get("/devices/mtr-0001")
                .body
                .contains("form class=\"command\"")
        );
        let forged = operator.post_form(
            "/devices/mtr-0001/commands",
            &[
                ("csrf", "not-the-token"),
                ("command", "check_now"),
                ("confirm", "yes"),
            ],
        );
        assert_eq!(forged.status, 403);
        let sent = operator.post_json(
            "/api/v1/devices/mtr-0001/commands",
            &serde_json::json!({"command": "check_now"}),
            Some(&csrf),
        );
        assert_eq!(sent.status, 202, "{}", sent.body);
        assert_eq!(sent.json()["by"], "olga");
        // Logged out, the session is gone.
        assert_eq!(
            operator.post_form("/logout", &[("csrf", &csrf)]).status,
            303
        );
        assert_eq!(operator.get("/api/v1/summary").status, 401);

        // Scripts use HTTP Basic, and need no CSRF token (they send no cookie).
        let script = http.basic("olga", "operator-pass");
        assert_eq!(script.get("/api/v1/summary").status, 200);
        let sent = script.post_json(
            "/api/v1/devices/mtr-0002/commands",
            &serde_json::json!({"command": "check_now"}),
            None,
        );
        assert_eq!(sent.status, 202, "{}", sent.body);
        assert_eq!(
            http.basic("olga", "wrong").get("/api/v1/summary").status,
            401
        );

        // Five failures and the name waits, even with the right password.
        let guesser = http.fresh();
        for _ in 0..4 {
            let form = guesser.get("/login");
            let csrf = hidden(&form.body, "csrf").expect("token");
            let refused = guesser.post_form(
                "/login",
                &[("csrf", &csrf), ("name", "vic"), ("password", "guess")],
            );
            assert_eq!(refused.status, 401);
        }
        let limited = http.basic("vic", "viewer-pass").get("/api/v1/summary");
        assert_eq!(limited.status, 429, "{}", limited.body);
        assert!(limited.header("retry-after").is_some());
        // A login form posted without its pre-login cookie is refused.
        let stale = http.fresh().post_form(
            "/login",
            &[
                ("csrf", "x"),
                ("name", "olga"),
                ("password", "operator-pass"),
            ],
        );
        assert_eq!(stale.status, 403);
    })
    .await;
    shutdown(devices).await;
    console.stop().await;
    broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_off_loopback_with_secure_cookies() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate");
    std::fs::write(dir.path().join("https.pem"), cert.cert.pem()).expect("write");
    std::fs::write(
        dir.path().join("https.key"),
        cert.signing_key.serialize_pem(),
    )
    .expect("write");
    // The config file as an admin writes it: off loopback, HTTPS, users.
    users_file(dir.path());
    let url = broker.url();
    let text = format!(
        "broker_url = \"{url}\"\nlisten = \"0.0.0.0:0\"\ntls_cert_file = \"https.pem\"\n\
         tls_key_file = \"https.key\"\nusers_file = \"users\"\n"
    );
    std::fs::write(dir.path().join("controller.toml"), &text).expect("write");
    let config = roomready_controller::config::Config::load(&dir.path().join("controller.toml"))
        .expect("a valid config");
    let running = roomready_controller::start(&config).await.expect("starts");
    let port = running.server.local_addr.port();
    assert!(running.url().starts_with("https://"));
    let http = Http::with_roots(
        &format!("https://127.0.0.1:{port}"),
        Some(cert.cert.pem().as_bytes()),
    );
    http.run(|http| {
        let form = http.get("/login");
        assert_eq!(form.status, 200);
        assert!(
            form.header("set-cookie")
                .is_some_and(|c| c.contains("; Secure"))
        );
        let csrf = hidden(&form.body, "csrf").expect("token");
        let done = http.post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("name", "vic"),
                ("password", "viewer-pass"),
            ],
        );
        assert_eq!(done.status, 303);
        assert!(
            done.header("set-cookie")
                .is_some_and(|c| c.contains("; Secure"))
        );
        assert_eq!(http.get("/api/v1/summary").status, 200);
    })
    .await;
    // Plain HTTP to the HTTPS port gets no answer.
    let plain = Http::new(&format!("http://127.0.0.1:{port}"));
    let refused = tokio::task::spawn_blocking(move || plain.try_get("/healthz").is_err())
        .await
        .expect("task");
    assert!(refused, "plain HTTP is not served on the HTTPS port");
    running.stop().await;
    broker.stop().await.expect("broker stops");
}
