//! Every broker key: accepted forms, the errors (file, line, column, key) for each mistake, the
//! loopback rule, and passwords that never show.

use std::ffi::OsString;

use super::*;

const CONFIG: &str = "/etc/roomready/agent.toml";

fn no_env(_: &str) -> Option<OsString> {
    None
}

/// Reads `broker_url = URL`, then `lines`, as a config file at `path` holding only them.
fn parse_at(path: &Path, url: &str, lines: &str) -> Result<BrokerSettings, KeyFileError> {
    let env = |name: &str| match name {
        "MQTT_PW" => Some(OsString::from("from-env")),
        "EMPTY_PW" => Some(OsString::new()),
        _ => None,
    };
    let text = format!("broker_url = \"{url}\"\n{lines}");
    let mut file = KeyFile::parse(path, &text)?;
    let settings = BrokerSettings::read(&mut file, &env, MqttVersion::V311)?;
    file.finish(&KEYS.join(", "))?;
    Ok(settings)
}

fn parse(url: &str, lines: &str) -> Result<BrokerSettings, KeyFileError> {
    parse_at(Path::new(CONFIG), url, lines)
}

fn error(url: &str, lines: &str) -> String {
    match parse(url, lines) {
        Ok(config) => panic!("{url} {lines}: accepted as {config:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn tls_keys_are_read_relative_to_the_config() {
    let config = parse(
        "mqtts://10.1.2.3",
        "broker_ca_file = \"ca.pem\"\nbroker_server_name = \"broker.example\"\n\
         client_cert_file = \"/pki/me.pem\"\nclient_key_file = \"me.key\"\n",
    )
    .expect("valid");
    assert!(config.url.tls);
    assert_eq!(config.url.port, 8883);
    assert_eq!(
        config.tls,
        BrokerTls {
            ca_file: Some(PathBuf::from("/etc/roomready/ca.pem")),
            server_name: Some("broker.example".into()),
            client_cert: Some(ClientCertFiles {
                cert_file: PathBuf::from("/pki/me.pem"),
                key_file: PathBuf::from("/etc/roomready/me.key"),
            }),
        }
    );
    let by_ip = parse("mqtts://10.1.2.3", "broker_server_name = \"10.1.2.3\"\n").expect("IP");
    assert_eq!(by_ip.tls.server_name.as_deref(), Some("10.1.2.3"));
}

#[test]
fn plain_mqtt_only_to_loopback_unless_allowed() {
    for url in [
        "mqtt://127.0.0.1",
        "mqtt://127.9.8.7:1884",
        "mqtt://[::1]:1883",
        "mqtt://LocalHost",
        "mqtt://localhost.",
        "mqtt://127.1",
        "mqtt://0x7f.1",
        "mqtt://[::ffff:127.0.0.1]:1883",
    ] {
        let config = parse(url, "").unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(!config.url.tls, "{url}");
    }
    assert_eq!(
        error("mqtt://10.0.0.5", ""),
        "/etc/roomready/agent.toml:1:14: key \"broker_url\": plain mqtt:// to \"10.0.0.5\", \
         which is not a loopback address, would send messages and credentials unencrypted; use \
         mqtts:// or set allow_insecure = true"
    );
    for url in [
        "mqtt://broker.example",
        "mqtt://[::2]",
        "mqtt://localhost.example",
        "mqtt://[::ffff:10.0.0.1]",
        "mqtt://128.1",
    ] {
        assert!(error(url, "").contains("not a loopback address"), "{url}");
    }
    // Only the documented schemes, with the one meant named.
    for (url, hint) in [
        ("tcp://127.0.0.1", "write mqtt:// for tcp://"),
        ("ssl://broker.example", "write mqtts:// for ssl://"),
        ("tls://broker.example", "write mqtts:// for tls://"),
    ] {
        let e = error(url, "");
        assert!(
            e.contains("unsupported scheme") && e.contains(hint),
            "{url}: {e}"
        );
    }
    let allowed = parse("mqtt://broker.example", "allow_insecure = true\n").expect("allowed");
    assert_eq!(allowed.url.host, "broker.example");
    assert!(
        error("mqtt://broker.example", "allow_insecure = false\n")
            .contains("not a loopback address")
    );
    assert_eq!(
        error("mqtt://broker.example", "allow_insecure = \"yes\"\n"),
        "/etc/roomready/agent.toml:2:18: key \"allow_insecure\": expected true or false, \
         found a string \"yes\""
    );
}

#[test]
fn tls_keys_need_mqtts() {
    for (line, key) in [
        ("broker_ca_file = \"ca.pem\"", "broker_ca_file"),
        ("broker_server_name = \"b.example\"", "broker_server_name"),
        ("client_cert_file = \"c.pem\"", "client_cert_file"),
        ("client_key_file = \"c.key\"", "client_key_file"),
    ] {
        let column = key.len() + 4;
        assert_eq!(
            error("mqtt://127.0.0.1", &format!("{line}\n")),
            format!(
                "/etc/roomready/agent.toml:2:{column}: key \"{key}\": applies only to TLS, but \
                 broker_url is mqtt://127.0.0.1:1883; use mqtts://"
            )
        );
    }
}

#[test]
fn client_certificate_and_key_come_together() {
    assert_eq!(
        error("mqtts://b.example", "client_cert_file = \"c.pem\"\n"),
        "/etc/roomready/agent.toml:2:20: key \"client_cert_file\": client_key_file is missing: \
         set both client_cert_file and client_key_file, or neither"
    );
    assert_eq!(
        error("mqtts://b.example", "client_key_file = \"c.key\"\n"),
        "/etc/roomready/agent.toml:2:19: key \"client_key_file\": client_cert_file is missing: \
         set both client_cert_file and client_key_file, or neither"
    );
    assert_eq!(
        error("mqtts://b.example", "broker_ca_file = \"\"\n"),
        "/etc/roomready/agent.toml:2:18: key \"broker_ca_file\": is empty"
    );
}

#[test]
fn server_name_must_be_a_name_or_address() {
    assert_eq!(
        error("mqtts://b.example", "broker_server_name = \"not a name\"\n"),
        "/etc/roomready/agent.toml:2:22: key \"broker_server_name\": \"not a name\" is not a \
         valid DNS name or IP address"
    );
}

#[test]
fn username_and_password_from_a_file_or_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("agent.toml");
    std::fs::write(dir.path().join("pw"), "s3cret pass\nsecond line\n").expect("write");
    std::fs::write(dir.path().join("crlf"), "dos-pass\r\n").expect("write");
    std::fs::write(dir.path().join("blank"), "\nlater\n").expect("write");
    let credentials = |lines: &str| {
        parse_at(&config_path, "mqtts://b.example", lines)
            .unwrap_or_else(|e| panic!("{lines}: {e}"))
            .credentials
    };
    assert_eq!(
        credentials("username = \"room\"\npassword_file = \"pw\"\n"),
        Some(Credentials {
            username: "room".into(),
            password: Some(Password::new("s3cret pass")),
        })
    );
    let crlf = credentials("username = \"room\"\npassword_file = \"crlf\"\n");
    assert_eq!(
        crlf.and_then(|c| c.password).as_ref().map(Password::expose),
        Some("dos-pass")
    );
    let from_env = credentials("username = \"room\"\npassword_env = \"MQTT_PW\"\n");
    assert_eq!(
        from_env
            .and_then(|c| c.password)
            .as_ref()
            .map(Password::expose),
        Some("from-env")
    );
    assert_eq!(
        credentials("username = \"room\"\n"),
        Some(Credentials {
            username: "room".into(),
            password: None,
        })
    );

    let error = |lines: &str| match parse_at(&config_path, "mqtts://b.example", lines) {
        Ok(config) => panic!("{lines}: accepted as {config:?}"),
        Err(e) => e.to_string(),
    };
    let file = config_path.display();
    let dir = dir.path().display();
    assert_eq!(
        error("password_file = \"pw\"\n"),
        format!(
            "{file}:2:17: key \"password_file\": a password needs a user name: set username too"
        )
    );
    assert_eq!(
        error("password_env = \"MQTT_PW\"\n"),
        format!(
            "{file}:2:16: key \"password_env\": a password needs a user name: set username too"
        )
    );
    assert_eq!(
        error("username = \"u\"\npassword_file = \"pw\"\npassword_env = \"MQTT_PW\"\n"),
        format!(
            "{file}:4:16: key \"password_env\": password_file is set too: give the password \
             one way, not both"
        )
    );
    assert!(
        error("username = \"u\"\npassword_file = \"missing\"\n").starts_with(&format!(
            "{file}:3:17: key \"password_file\": cannot read {dir}/missing: "
        ))
    );
    assert_eq!(
        error("username = \"u\"\npassword_file = \"blank\"\n"),
        format!("{file}:3:17: key \"password_file\": the first line of {dir}/blank is empty")
    );
    assert_eq!(
        error("username = \"u\"\npassword_env = \"UNSET_PW\"\n"),
        format!("{file}:3:16: key \"password_env\": environment variable UNSET_PW is not set")
    );
    assert_eq!(
        error("username = \"u\"\npassword_env = \"EMPTY_PW\"\n"),
        format!("{file}:3:16: key \"password_env\": environment variable EMPTY_PW is empty")
    );
    assert_eq!(
        error("username = \"u\"\npassword_env = \"A=B\"\n"),
        format!("{file}:3:16: key \"password_env\": must be the name of an environment variable")
    );
    assert_eq!(
        error("username = \"\"\n"),
        format!("{file}:2:12: key \"username\": is empty")
    );
}

#[test]
fn the_password_never_shows_in_debug_output() {
    let text = "broker_url = \"mqtts://b.example\"\nusername = \"u\"\n\
                password_env = \"MQTT_PW\"\n";
    let env = |_: &str| Some(OsString::from("hunter2-secret"));
    let mut file = KeyFile::parse(Path::new(CONFIG), text).expect("TOML");
    let settings = BrokerSettings::read(&mut file, &env, MqttVersion::V311).expect("valid");
    let password = settings
        .credentials
        .as_ref()
        .and_then(|c| c.password.as_ref());
    assert_eq!(password.map(Password::expose), Some("hunter2-secret"));
    let shown = format!("{settings:?}\n{settings:#?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("password: Some(***)"), "{shown}");
    let mut file = KeyFile::parse(Path::new(CONFIG), text).expect("TOML");
    assert!(BrokerSettings::read(&mut file, &no_env, MqttVersion::V311).is_err());
}

#[test]
fn broker_urls() {
    let ok = |s: &str| s.parse::<BrokerUrl>().expect(s);
    assert_eq!(
        ok("mqtt://127.0.0.1:1883"),
        BrokerUrl {
            host: "127.0.0.1".into(),
            port: 1883,
            tls: false,
        }
    );
    assert_eq!(
        ok("mqtt://broker"),
        BrokerUrl {
            host: "broker".into(),
            port: 1883,
            tls: false,
        }
    );
    assert_eq!(
        ok("MQTT://broker:9/"),
        BrokerUrl {
            host: "broker".into(),
            port: 9,
            tls: false,
        }
    );
    assert_eq!(
        ok("mqtt://[::1]:2000"),
        BrokerUrl {
            host: "::1".into(),
            port: 2000,
            tls: false,
        }
    );
    assert_eq!(ok("mqtt://[::1]:2000").to_string(), "mqtt://[::1]:2000");
    assert_eq!(
        ok("mqtts://broker"),
        BrokerUrl {
            host: "broker".into(),
            port: 8883,
            tls: true,
        }
    );
    assert_eq!(ok("mqtts://broker:1884").port, 1884);
    assert_eq!(ok("mqtts://[::1]").to_string(), "mqtts://[::1]:8883");
    for (bad, reason) in [
        (
            "broker:1883",
            "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
        ),
        ("ws://broker", "unsupported scheme"),
        ("mqtt://:1883", "host is empty"),
        ("mqtt://broker:0", "port must be"),
        ("mqtt://broker:65536", "port must be"),
        ("mqtt://broker:x", "port must be"),
        ("mqtt://u:p@broker", "credentials"),
        ("mqtt://broker/path", "path, query or fragment"),
        ("mqtt://::1", "brackets"),
        ("mqtt://[::1", "unclosed"),
        ("mqtt://bro ker", "not allowed in a host name"),
    ] {
        let err = bad.parse::<BrokerUrl>().expect_err(bad);
        assert!(err.to_string().contains(reason), "{bad}: {err}");
    }
}
