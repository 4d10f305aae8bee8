//! The config file's tests: parsing and errors, the update keys, the documented examples, and
//! every key shown where the docs promise it.

mod parsing {
    use super::super::*;
    use roomready_protocol::EndpointRole;

    fn parse(text: &str) -> Result<Config, KeyFileError> {
        Config::parse(Path::new("/etc/roomready/agent.toml"), text)
    }

    const GOOD: &str = "broker_url = \"mqtts://broker.example:1884\"\ndevice_id = \"mtr-1\"\nfacts_file = \"facts.toml\"\n";

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse(GOOD).expect("valid");
        assert_eq!(
            config.broker,
            BrokerUrl {
                host: "broker.example".into(),
                port: 1884,
                tls: true,
            }
        );
        assert_eq!(config.broker_tls, BrokerTls::default());
        assert_eq!(config.credentials, None);
        assert_eq!(config.device_id.as_str(), "mtr-1");
        assert_eq!(
            config.facts_file,
            Some(PathBuf::from("/etc/roomready/facts.toml"))
        );
        assert_eq!(config.report_interval, DEFAULT_REPORT_INTERVAL);
        assert_eq!(config.topic_prefix.as_str(), "roomready");
    }

    #[test]
    fn all_keys() {
        let text = format!("{GOOD}report_interval_secs = 60\ntopic_prefix = \"acme/rooms\"\n")
            .replace("facts.toml", "/var/lib/facts.toml");
        let config = parse(&text).expect("valid");
        assert_eq!(config.report_interval, Duration::from_secs(60));
        assert_eq!(config.topic_prefix.as_str(), "acme/rooms");
        assert_eq!(
            config.facts_file,
            Some(PathBuf::from("/var/lib/facts.toml"))
        );
    }

    #[test]
    fn placement_is_read_and_checked_where_it_is_written() {
        let text = format!(
            "{GOOD}site = \"oslo-hq\"\nroom = \"Fjord 4.12\"\nring = 1\ntags = [\"board\", \"floor-4\"]\n"
        );
        let placement = parse(&text).expect("valid").placement;
        assert_eq!(placement.site.as_ref().map(|s| s.as_str()), Some("oslo-hq"));
        assert_eq!(
            placement.room.as_ref().map(|r| r.as_str()),
            Some("Fjord 4.12")
        );
        assert_eq!(placement.ring.map(|r| r.get()), Some(1));
        assert!(placement.tags.contains("floor-4"));
        assert!(parse(GOOD).expect("valid").placement.is_empty());

        let cases = [
            (
                "site = \"Oslo HQ\"",
                ":4:8: key \"site\": site \"Oslo HQ\": character ' ' at byte 4 is not allowed (allowed: A-Z a-z 0-9 . _ -)",
            ),
            ("room = \"\"", ":4:8: key \"room\": room is empty"),
            (
                "ring = 10",
                ":4:8: key \"ring\": must be an integer in 0..=9, found an integer 10",
            ),
            (
                "tags = [\"ok\", \"VIP\"]",
                ":4:15: key \"tags\": tag \"VIP\": character 'V' at byte 0 is not allowed (allowed: a-z 0-9 . _ - :)",
            ),
            (
                "tags = [\"a\", \"a\"]",
                ":4:14: key \"tags\": tag \"a\" is given twice",
            ),
            (
                "tags = \"board\"",
                ":4:8: key \"tags\": expected an array of strings",
            ),
        ];
        for (line, expected) in cases {
            let error = parse(&format!("{GOOD}{line}\n"))
                .expect_err(line)
                .to_string();
            assert!(error.contains(expected), "{line}: {error}");
        }
        let seventeen: Vec<String> = (0..17).map(|i| format!("\"t{i}\"")).collect();
        let error = parse(&format!("{GOOD}tags = [{}]\n", seventeen.join(", ")))
            .expect_err("17 tags")
            .to_string();
        assert!(error.contains("17 tags; at most 16 are allowed"), "{error}");
    }

    #[test]
    fn errors_name_file_line_key_and_reason() {
        let cases = [
            (
                GOOD.replace("mqtts://broker.example:1884", "http://x"),
                "/etc/roomready/agent.toml:1:14: key \"broker_url\": invalid broker URL \"http://x\": unsupported scheme; expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
            ),
            (
                GOOD.replace("mtr-1", "mtr/1"),
                "/etc/roomready/agent.toml:2:13: key \"device_id\": device id \"mtr/1\": character '/' at byte 3 is not allowed (allowed: A-Z a-z 0-9 . _ -)",
            ),
            (
                format!("{GOOD}report_interval_secs = 0\n"),
                "/etc/roomready/agent.toml:4:24: key \"report_interval_secs\": must be an integer in 1..=86400, found an integer 0",
            ),
            (
                format!("{GOOD}report_interval_secs = \"5m\"\n"),
                "/etc/roomready/agent.toml:4:24: key \"report_interval_secs\": expected an integer, found a string \"5m\"",
            ),
            (
                format!("{GOOD}topic_prefix = \"a/#\"\n"),
                "/etc/roomready/agent.toml:4:16: key \"topic_prefix\": topic prefix \"a/#\" contains an MQTT wildcard ('+' or '#')",
            ),
            (
                format!("{GOOD}brokr = 1\n"),
                "/etc/roomready/agent.toml:4:1: key \"brokr\": unknown key; known keys: broker_url, allow_insecure, broker_ca_file, broker_server_name, client_cert_file, client_key_file, username, password_file, password_env, mqtt_version, device_id, facts_file, report_interval_secs, topic_prefix, endpoints, resolve, ca_file, probe_timeout_secs, journal_dir, journal_max_mib, journal_fsync, command_max_bytes, app_update_command, app_update_timeout_secs, update_feed_url, update_github_repo, update_github_api_url, update_github_token_file, update_keys, update_channel, allow_downgrade, update_max_mib, update_health_secs, auto_update, update_window, update_ca_file, site, room, ring, tags, schannel_events, schannel_window_days, schannel_max_events, allow_fix",
            ),
            (
                GOOD.replace("device_id = \"mtr-1\"\n", ""),
                "/etc/roomready/agent.toml: key \"device_id\": missing; required: this device's id",
            ),
        ];
        for (text, message) in cases {
            let err = parse(&text).expect_err(&text);
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn endpoints_default_to_microsoft365() {
        let hosts = |text: &str| -> Vec<(String, u16, EndpointRole)> {
            parse(text)
                .expect(text)
                .endpoints
                .into_iter()
                .map(|e| (e.host, e.port, e.role))
                .collect()
        };
        let m365: Vec<_> = crate::probe::endpoint::MICROSOFT365_HOSTS
            .iter()
            .map(|h| ((*h).to_owned(), 443, EndpointRole::Microsoft365))
            .collect();
        assert_eq!(hosts(GOOD), m365, "no key: the Microsoft 365 hosts");
        assert_eq!(
            hosts(&format!("{GOOD}endpoints = []\n")),
            vec![],
            "[]: none"
        );
        let listed = hosts(&format!(
            "{GOOD}endpoints = [\"microsoft365\", \"adfs=sts.contoso.com\", \"MICROSOFT365\"]\n"
        ));
        let mut expected = m365.clone();
        expected.push(("sts.contoso.com".into(), 443, EndpointRole::Adfs));
        assert_eq!(listed, expected, "expanded once, repeats dropped");
        let err = parse(&format!("{GOOD}endpoints = [\"microsoft 365\"]\n")).expect_err("bad");
        assert!(
            err.to_string()
                .starts_with("/etc/roomready/agent.toml:4:14: key \"endpoints\": invalid host"),
            "{err}"
        );
    }

    #[test]
    fn resolve_names_addresses_for_probed_endpoints() {
        let config = parse(&format!(
            "{GOOD}endpoints = [\"onprem_sfb=pool.contoso.com:5061\"]\nresolve = [\"Pool.Contoso.com:5061:10.0.0.5\"]\n"
        ))
        .expect("valid");
        assert_eq!(
            config.resolve.get(&("pool.contoso.com".into(), 5061)),
            Some(&"10.0.0.5:5061".parse().expect("addr"))
        );
        assert!(parse(GOOD).expect("valid").resolve.is_empty());
        for (line, message) in [
            (
                "resolve = [\"pool.contoso.com:443:10.0.0.5\"]",
                "/etc/roomready/agent.toml:5:12: key \"resolve\": \"pool.contoso.com:443:10.0.0.5\" names pool.contoso.com:443, which is not an endpoint to probe",
            ),
            (
                "resolve = [\"pool.contoso.com:5061\"]",
                "/etc/roomready/agent.toml:5:12: key \"resolve\": \"pool.contoso.com:5061\": expected HOST:PORT:ADDRESS, e.g. pool.contoso.com:443:192.0.2.10",
            ),
        ] {
            let err = parse(&format!(
                "{GOOD}endpoints = [\"onprem_sfb=pool.contoso.com:5061\"]\n{line}\n"
            ))
            .expect_err(line);
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn journal_and_command_keys() {
        let config = parse(GOOD).expect("valid");
        assert_eq!(
            config.journal,
            JournalConfig {
                dir: PathBuf::from("/etc/roomready/journal"),
                max_bytes: 64 * 1024 * 1024,
                fsync: true,
            }
        );
        assert_eq!(config.command_max_bytes, 65_536);
        let text = format!(
            "{GOOD}journal_dir = \"/var/spool/roomready\"\njournal_max_mib = 8\njournal_fsync = \"never\"\ncommand_max_bytes = 4096\n"
        );
        let config = parse(&text).expect("valid");
        assert_eq!(config.journal.dir, PathBuf::from("/var/spool/roomready"));
        assert_eq!(config.journal.max_bytes, 8 * 1024 * 1024);
        assert!(!config.journal.fsync);
        assert_eq!(config.command_max_bytes, 4096);
        for (extra, message) in [
            (
                "journal_fsync = \"sometimes\"\n",
                "key \"journal_fsync\": expected \"always\" or \"never\", found \"sometimes\"",
            ),
            (
                "journal_max_mib = 0\n",
                "key \"journal_max_mib\": must be an integer in 1..=65536, found an integer 0",
            ),
            (
                "command_max_bytes = 10\n",
                "key \"command_max_bytes\": must be an integer in 1024..=16777216, found an integer 10",
            ),
        ] {
            let err = parse(&format!("{GOOD}{extra}")).expect_err(extra);
            assert!(err.to_string().contains(message), "{err}");
        }
    }

    #[test]
    fn auto_update_and_its_window() {
        let feed = "update_feed_url = \"https://u.example\"\nupdate_keys = [\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"]\n";
        let config = parse(&format!("{GOOD}{feed}auto_update = true\n")).expect("valid");
        assert_eq!(
            config.update.auto,
            Some(crate::update::window::Window::default())
        );
        let config = parse(&format!(
            "{GOOD}{feed}auto_update = true\nupdate_window = \"22:00-02:30\"\n"
        ))
        .expect("valid");
        assert_eq!(
            config.update.auto.map(|w| w.to_string()).as_deref(),
            Some("22:00-02:30")
        );
        assert_eq!(
            parse(&format!("{GOOD}{feed}")).expect("valid").update.auto,
            None
        );
        let err = parse(&format!("{GOOD}{feed}update_window = \"1-5\"\n")).expect_err("bad window");
        assert!(
            err.to_string()
                .contains("key \"update_window\": expected HH:MM-HH:MM"),
            "{err}"
        );
        let err = parse(&format!("{GOOD}auto_update = true\n")).expect_err("no feed");
        assert!(
            err.to_string().contains("auto_update needs a feed"),
            "{err}"
        );
    }

    #[test]
    fn app_update_command() {
        assert_eq!(parse(GOOD).expect("valid").app_update, None);
        let text = format!(
            "{GOOD}app_update_command = [\"powershell.exe\", \"-File\", \"update.ps1\"]\napp_update_timeout_secs = 60\n"
        );
        let config = parse(&text).expect("valid");
        assert_eq!(
            config.app_update,
            Some(crate::app_update::CommandUpdater {
                argv: vec!["powershell.exe".into(), "-File".into(), "update.ps1".into()],
                timeout: Duration::from_secs(60),
            })
        );
        let err = parse(&format!("{GOOD}app_update_command = []\n")).expect_err("empty");
        assert!(
            err.to_string().contains("key \"app_update_command\""),
            "{err}"
        );
        let err = parse(&format!("{GOOD}app_update_command = [\"\"]\n")).expect_err("no program");
        assert!(
            err.to_string().contains("must name a program first"),
            "{err}"
        );
    }

    #[test]
    fn facts_file_is_required_where_there_are_no_native_facts() {
        let without = GOOD.replace("facts_file = \"facts.toml\"\n", "");
        let parsed = parse(&without);
        assert_eq!(
            parsed.is_ok(),
            cfg!(windows),
            "only Windows reads facts natively"
        );
        match parsed {
            Ok(config) => assert_eq!(config.facts_file, None),
            Err(err) => {
                assert_eq!(
                    err.to_string(),
                    "/etc/roomready/agent.toml: key \"facts_file\": missing; required: path of the \
                     device facts file (facts are read natively only on Windows)"
                );
            }
        }
    }

    #[test]
    fn unreadable_file_names_the_file() {
        let err = Config::load(Path::new("/nonexistent/agent.toml")).expect_err("missing");
        assert!(
            err.to_string()
                .starts_with("/nonexistent/agent.toml: cannot read config file:"),
            "{err}"
        );
    }
}

mod update_tests {
    use super::super::*;
    use crate::update::settings::{DEFAULT_UPDATE_HEALTH, GITHUB_API_URL};

    const BASE: &str =
        "broker_url = \"mqtts://broker.example\"\ndevice_id = \"mtr-1\"\nfacts_file = \"f.toml\"\n";
    /// Standard base64 of 32 bytes 0..32.
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn parse(lines: &str) -> Result<Config, KeyFileError> {
        Config::parse(
            Path::new("/etc/roomready/agent.toml"),
            &format!("{BASE}{lines}"),
        )
    }

    fn error(lines: &str) -> String {
        match parse(lines) {
            Ok(config) => panic!("{lines}: accepted as {:?}", config.update),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_without_update_keys() {
        let config = parse("").expect("valid");
        assert_eq!(config.update, UpdateConfig::default());
        assert_eq!(config.update.max_bytes, 64 * 1024 * 1024);
        assert_eq!(config.update.channel, UpdateChannel::Stable);
        assert!(!config.update.allow_downgrade);
    }

    #[test]
    fn all_update_keys() {
        let config = parse(&format!(
            "update_feed_url = \"https://updates.example/roomready/\"\nupdate_keys = [\"{KEY}\", \"{KEY}\"]\n\
             update_channel = \"beta\"\nallow_downgrade = true\nupdate_max_mib = 8\n"
        ))
        .expect("valid");
        let expected: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            config.update,
            UpdateConfig {
                feed: Some(UpdateFeed::Manifest {
                    url: "https://updates.example/roomready".into()
                }),
                keys: vec![expected, expected],
                channel: UpdateChannel::Beta,
                allow_downgrade: true,
                max_bytes: 8 * 1024 * 1024,
                health_timeout: DEFAULT_UPDATE_HEALTH,
                auto: None,
                ca_file: None,
            }
        );
    }

    #[test]
    fn github_releases() {
        let config = parse(&format!(
            "update_github_repo = \"contoso/roomready\"\nupdate_keys = [\"{KEY}\"]\n"
        ))
        .expect("valid");
        let feed = config.update.feed.expect("a feed");
        assert_eq!(
            feed,
            UpdateFeed::GitHub {
                api_url: GITHUB_API_URL.into(),
                owner: "contoso".into(),
                repo: "roomready".into(),
                token: None,
            }
        );
        assert_eq!(feed.to_string(), "github:contoso/roomready");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "ghp_s3cret\r\nignored\n").expect("token");
        let text = format!(
            "{BASE}update_github_repo = \"contoso/room.ready\"\n\
             update_github_api_url = \"https://github.contoso.com/api/v3/\"\n\
             update_github_token_file = \"token\"\nupdate_keys = [\"{KEY}\"]\n"
        );
        let config = Config::parse(&dir.path().join("agent.toml"), &text).expect("valid");
        let feed = config.update.feed.expect("a feed");
        assert_eq!(
            feed,
            UpdateFeed::GitHub {
                api_url: "https://github.contoso.com/api/v3".into(),
                owner: "contoso".into(),
                repo: "room.ready".into(),
                token: Some(Password::new("ghp_s3cret")),
            }
        );
        assert!(!format!("{feed:?}").contains("s3cret"), "{feed:?}");
        assert_eq!(
            feed.to_string(),
            "github:contoso/room.ready at https://github.contoso.com/api/v3"
        );
    }

    #[test]
    fn github_errors_name_the_key() {
        for (text, expected) in [
            (
                format!("update_github_repo = \"roomready\"\nupdate_keys = [\"{KEY}\"]\n"),
                "key \"update_github_repo\": expected OWNER/NAME, found \"roomready\"",
            ),
            (
                format!("update_github_repo = \"a/b/c\"\nupdate_keys = [\"{KEY}\"]\n"),
                "key \"update_github_repo\": expected OWNER/NAME",
            ),
            (
                "update_github_repo = \"a/b\"\n".to_owned(),
                "key \"update_github_repo\": update_keys is missing or empty",
            ),
            (
                format!(
                    "update_github_repo = \"a/b\"\nupdate_feed_url = \"https://u.example\"\nupdate_keys = [\"{KEY}\"]\n"
                ),
                "key \"update_github_repo\": update_feed_url is set too",
            ),
            (
                format!(
                    "update_github_api_url = \"https://github.contoso.com/api/v3\"\nupdate_keys = [\"{KEY}\"]\n"
                ),
                "key \"update_github_api_url\": needs update_github_repo",
            ),
            (
                format!(
                    "update_github_repo = \"a/b\"\nupdate_github_api_url = \"http://github.contoso.com\"\nupdate_keys = [\"{KEY}\"]\n"
                ),
                "key \"update_github_api_url\": plain http://",
            ),
            (
                format!(
                    "update_github_repo = \"a/b\"\nupdate_github_token_file = \"/nonexistent/token\"\nupdate_keys = [\"{KEY}\"]\n"
                ),
                "key \"update_github_token_file\": cannot read /nonexistent/token",
            ),
        ] {
            let err = error(&text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn http_only_to_loopback() {
        for url in [
            "http://127.0.0.1:8080/feed",
            "http://localhost/feed",
            "http://[::1]:80",
        ] {
            let config = parse(&format!(
                "update_feed_url = \"{url}\"\nupdate_keys = [\"{KEY}\"]\n"
            ))
            .expect(url);
            assert_eq!(
                config.update.feed,
                Some(UpdateFeed::Manifest { url: url.into() })
            );
        }
        assert_eq!(
            error(&format!(
                "update_feed_url = \"http://updates.example\"\nupdate_keys = [\"{KEY}\"]\n"
            )),
            "/etc/roomready/agent.toml:4:19: key \"update_feed_url\": plain http:// to \
             \"updates.example\", which is not a loopback address, could be tampered with or \
             replayed in transit; use https://"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                format!("update_feed_url = \"ftp://x\"\nupdate_keys = [\"{KEY}\"]\n"),
                "/etc/roomready/agent.toml:4:19: key \"update_feed_url\": unsupported scheme \"ftp\"; expected https://HOST[:PORT][/PATH] (http:// only to a loopback host)",
            ),
            (
                "update_feed_url = \"https://updates.example\"\n".to_owned(),
                "/etc/roomready/agent.toml:4:19: key \"update_feed_url\": update_keys is missing or empty: pin the publisher's verifying keys (base64); updates are installed only when signed by one of them",
            ),
            (
                "update_keys = [\"AAEC\"]\n".to_owned(),
                "/etc/roomready/agent.toml:4:16: key \"update_keys\": \"AAEC\" decodes to 3 bytes; an ed25519 verifying key is 32 bytes",
            ),
            (
                "update_keys = [\"not base64!\"]\n".to_owned(),
                "/etc/roomready/agent.toml:4:16: key \"update_keys\": \"not base64!\" is not standard base64: Invalid symbol 32, offset 3.",
            ),
            (
                "update_keys = \"AAEC\"\n".to_owned(),
                "/etc/roomready/agent.toml:4:15: key \"update_keys\": expected an array of strings, found a string \"AAEC\"",
            ),
            (
                "update_channel = \"nightly\"\n".to_owned(),
                "/etc/roomready/agent.toml:4:18: key \"update_channel\": expected \"stable\" or \"beta\", found \"nightly\"",
            ),
            (
                "update_max_mib = 0\n".to_owned(),
                "/etc/roomready/agent.toml:4:18: key \"update_max_mib\": must be an integer in 1..=4096, found an integer 0",
            ),
            (
                "allow_downgrade = \"yes\"\n".to_owned(),
                "/etc/roomready/agent.toml:4:19: key \"allow_downgrade\": expected true or false, found a string \"yes\"",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(error(&text), message, "{text}");
        }
    }
}

mod example_tests {
    use super::super::*;

    /// The example in docs/ must stay a valid config, and its facts file valid facts.
    #[test]
    fn documented_examples_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
        let config = Config::load(&dir.join("agent.toml")).expect("docs/examples/agent.toml");
        assert_eq!(config.device_id.as_str(), "mtr-0001");
        let facts_file = config
            .facts_file
            .as_ref()
            .expect("the example names its facts file");
        let facts = crate::facts::FactsFile::new(facts_file)
            .read()
            .expect("docs/examples/facts.toml");
        assert_eq!(
            crate::assess::assess(&facts).verdict,
            roomready_protocol::Verdict::Ready
        );
    }
}

mod documented {
    //! Every key the config takes (its [`SECTIONS`], what `finish` checks against) is shown in
    //! the doc of the module that owns its section, in the README and in
    //! docs/examples/agent.toml.

    use super::super::{OWN_KEYS, SECTIONS};

    /// Whether `text` has a line `KEY = …` (after `//!`, `#` or spaces) or says `KEY = ` inline.
    fn shows(text: &str, key: &str) -> bool {
        text.lines().any(|line| {
            line.trim_start_matches(['/', '!', '#', ' '])
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
                || line.contains(&format!(" {key} = "))
        })
    }

    /// A source file's `//!` doc.
    fn module_doc(source: &str) -> String {
        source
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn every_key_is_shown_in_its_owners_doc_the_readme_and_the_example() {
        let config_doc = module_doc(include_str!("../config.rs"));
        let probe_doc = module_doc(include_str!("../probe/settings.rs"));
        let journal_doc = module_doc(include_str!("../link/journal/settings.rs"));
        let command_doc = module_doc(include_str!("../command/settings.rs"));
        let app_update_doc = module_doc(include_str!("../app_update/settings.rs"));
        let update_doc = module_doc(include_str!("../update/settings.rs"));
        let placement_doc = module_doc(include_str!("../report/placement.rs"));
        let schannel_doc = module_doc(include_str!("../facts/schannel/settings.rs"));
        let fix_doc = module_doc(include_str!("../fix/settings.rs"));
        let readme = include_str!("../../../README.md");
        let example = include_str!("../../../docs/examples/agent.toml");
        // The broker's keys are roomready-connect's; the agent's config doc shows them.
        let owners: [(&[&str], &str, &str); 10] = [
            (
                &roomready_connect::broker::KEYS,
                "config's doc",
                &config_doc,
            ),
            (OWN_KEYS, "config's doc", &config_doc),
            (
                crate::probe::settings::KEYS,
                "probe::settings' doc",
                &probe_doc,
            ),
            (
                crate::link::journal::settings::KEYS,
                "link::journal::settings' doc",
                &journal_doc,
            ),
            (
                crate::command::settings::KEYS,
                "command::settings' doc",
                &command_doc,
            ),
            (
                crate::app_update::settings::KEYS,
                "app_update::settings' doc",
                &app_update_doc,
            ),
            (
                crate::update::settings::KEYS,
                "update::settings' doc",
                &update_doc,
            ),
            (
                crate::report::placement::KEYS,
                "report::placement's doc",
                &placement_doc,
            ),
            (
                crate::facts::schannel::settings::KEYS,
                "facts::schannel::settings' doc",
                &schannel_doc,
            ),
            (crate::fix::settings::KEYS, "fix::settings' doc", &fix_doc),
        ];
        assert_eq!(
            owners.len(),
            SECTIONS.len(),
            "a section without an owner here"
        );
        let mut missing = Vec::new();
        for (keys, owner, doc) in owners {
            for key in keys {
                for (what, text) in [
                    (owner, doc),
                    ("README.md", readme),
                    ("docs/examples/agent.toml", example),
                ] {
                    if !shows(text, key) {
                        missing.push(format!("{key} in {what}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "not shown: {missing:?}");
    }
}
