//! The controller's device page, section by section: facts with their sources, the endpoint
//! table, the verdict timeline and the presence history of a device built from the golden
//! fixtures.

use roomready_controller::store::{HistoryKind, HistoryQuery};
use roomready_protocol::{DeviceId, Verdict};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_tests::console::Console;
use roomready_tests::publish::publish;

/// A golden fixture of `roomready-protocol` as JSON.
fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../protocol/tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("a golden fixture");
    serde_json::from_str(&text).expect("the fixture is JSON")
}

/// The part of a page from the `<section>` with `id` to the end of that section.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .match_indices("<section")
        .map(|(at, _)| at)
        .find(|&at| {
            let tag = &html[at..at + html[at..].find('>').unwrap_or(0)];
            tag.contains(&format!(" id=\"{id}\""))
        })
        .unwrap_or_else(|| panic!("no section #{id} in {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</section>").expect("the section ends")]
}

/// Text of an HTML fragment as a reader sees it: tags dropped (a `<br>` as ` | `), entities
/// read, whitespace runs as one space.
fn text_of(fragment: &str) -> String {
    let mut out = String::new();
    let mut rest = fragment;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('>').expect("a tag ends") + at;
        if rest[at..=end].starts_with("<br") {
            out.push_str(" | ");
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The value of attribute `name` in the start tag `tag`, entities read.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[at..].find('"')? + at;
    Some(text_of(&tag[at..end]))
}

/// One table cell: its `class` and `title` attributes and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cell {
    class: Option<String>,
    title: Option<String>,
    text: String,
}

/// The rows of the tables in `fragment`, each as its `th` and `td` cells.
fn table_rows(fragment: &str) -> Vec<Vec<Cell>> {
    fragment
        .split("<tr")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").expect("the row ends")];
            let mut cells = Vec::new();
            let mut rest = row;
            while let Some(at) = ["<td", "<th"]
                .iter()
                .filter_map(|open| {
                    rest.match_indices(open)
                        .find(|(i, _)| matches!(rest.as_bytes().get(i + 3), Some(b' ' | b'>')))
                        .map(|(i, _)| i)
                })
                .min()
            {
                let close = if rest[at..].starts_with("<td") {
                    "</td>"
                } else {
                    "</th>"
                };
                let tag_end = rest[at..].find('>').expect("a tag ends") + at;
                let tag = &rest[at..=tag_end];
                let end = rest[tag_end..].find(close).expect("the cell ends") + tag_end;
                cells.push(Cell {
                    class: attribute(tag, "class"),
                    title: attribute(tag, "title"),
                    text: text_of(&rest[tag_end + 1..end]),
                });
                rest = &rest[end + close.len()..];
            }
            cells
        })
        .collect()
}

fn texts(row: &[Cell]) -> Vec<&str> {
    row.iter().map(|c| c.text.as_str()).collect()
}

/// The device page's sections from a device's own messages, rendered by the server: its facts
/// with where each came from (the agent on the device, its own version, its config), the
/// endpoint table (each TLS version's outcome with the suite chosen and the probe's detail, the
/// preferred TLS 1.2 suite, the certificate's verdict, why none was checked, a required client
/// certificate, the days left), the verdict timeline drawn from the store's verdict changes,
/// and the presence history, newest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_page_shows_facts_endpoints_timeline_and_presence() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |_, _| {}).await;
    console.subscribed().await;

    // The golden fixtures of mtr-0007: online, a not_ready state, then at_risk with the
    // endpoint reports (and, added here, where it is and two more endpoints), offline by its
    // last will, online again.
    let mut endpoints = fixture("state_endpoints.json");
    endpoints["placement"] = serde_json::json!({
        "site": "oslo-hq", "room": "Fjord 4", "ring": 0, "tags": ["board", "vip"]
    });
    let more = endpoints["endpoints"].as_array_mut().expect("endpoints");
    more.push(serde_json::json!({
        "host": "adfs.contoso.com",
        "port": 443,
        "role": "adfs",
        "versions": [
            {"version": "tls1.3", "outcome": "no_answer", "detail": "no answer in 5 s"},
            {"version": "tls1.2", "outcome": "accepted",
             "suite": {"code": "C02F", "name": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}}
        ],
        "certificate": {
            "valid": false,
            "error": "expired on 2026-11-01",
            "not_after": "2026-11-01T00:00:00.000Z",
            "days_left": -22
        },
        "tls12_suites": {"preferred": {"code": "C02F", "name": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}}
    }));
    more.push(serde_json::json!({
        "host": "anon.contoso.com",
        "port": 8443,
        "role": "custom",
        "versions": [{"version": "tls1.2", "outcome": "accepted", "suite": {"code": "00A7"}}],
        "certificate_unavailable": "the server chose a suite without a certificate"
    }));
    let mut offline = fixture("status_will.json");
    offline["seq"] = 43.into();
    offline["ts"] = "2026-11-23T14:30:00.000Z".into();
    let mut online_again = fixture("status_online.json");
    online_again["seq"] = 43.into();
    online_again["ts"] = "2026-11-23T14:31:00.000Z".into();
    let topic = |channel: &str| format!("roomready/v1/mtr-0007/{channel}");
    let bytes = |v: serde_json::Value| v.to_string().into_bytes();
    publish(
        &broker.url(),
        "fixtures",
        vec![
            (topic("status"), bytes(fixture("status_online.json")), false),
            (topic("state"), bytes(fixture("state.json")), false),
            (topic("state"), bytes(endpoints), false),
            (topic("status"), bytes(offline), false),
            (topic("status"), bytes(online_again), false),
        ],
    )
    .await;
    let id = DeviceId::new("mtr-0007").expect("id");
    let history = |kind| {
        console
            .store()
            .history(&HistoryQuery {
                device: Some(id.clone()),
                kinds: vec![kind],
                ..HistoryQuery::default()
            })
            .expect("history")
    };
    let detail = console
        .until("the device's states and presence", |store| {
            let detail = store.device(&id).ok()??;
            let presence = store
                .history(&HistoryQuery {
                    device: Some(id.clone()),
                    kinds: vec![HistoryKind::Presence],
                    ..HistoryQuery::default()
                })
                .ok()?;
            (detail.state.as_ref().is_some_and(|s| s.seq == 43) && presence.len() == 3)
                .then_some(detail)
        })
        .await;
    let verdicts = history(HistoryKind::Verdict);
    let presence = history(HistoryKind::Presence);

    let page = console
        .http
        .clone()
        .run(|http| {
            let page = http.get("/devices/mtr-0007");
            assert_eq!(page.status, 200);
            page.body
        })
        .await;

    // Facts, each with its source.
    let facts: Vec<Vec<String>> = table_rows(section(&page, "facts"))
        .iter()
        .map(|row| texts(row).into_iter().map(str::to_owned).collect())
        .collect();
    let agent = "as read by the agent on the device";
    let config = "the agent's config";
    assert_eq!(
        facts,
        [
            ["Kind", "teams_rooms_windows", agent],
            ["Teams Rooms app", "4.0.105.0", agent],
            ["OS build", "19045.4894", agent],
            ["Agent", "0.1.0", "the agent's own version"],
            ["Assessed", "2026-11-23T14:07:25Z", "state #43"],
            ["Site", "oslo-hq", config],
            ["Room", "Fjord 4", config],
            ["Ring", "0 (pilot)", config],
            ["Tags", "board vip", config],
        ]
        .map(|row| row.map(str::to_owned).to_vec())
    );

    // The endpoint table: a column per TLS version, oldest first, then the suite, the
    // certificate and its days left.
    let table = table_rows(section(&page, "endpoints"));
    assert_eq!(
        texts(&table[0]),
        [
            "Endpoint",
            "Role",
            "TLS 1.0",
            "TLS 1.1",
            "TLS 1.2",
            "TLS 1.3",
            "TLS 1.2 suite",
            "Certificate",
            "Days left"
        ]
    );
    assert_eq!(table.len(), 4, "a header and the three endpoints");
    let dhe = "TLS_DHE_RSA_WITH_AES_128_CBC_SHA";
    let sfb = &table[1];
    assert_eq!(
        texts(sfb),
        [
            "pool.contoso.com:443 | at 192.0.2.10:443",
            "onprem_sfb | 6.0.9319.548",
            &format!("accepted | {dhe}"),
            "downgraded",
            &format!("accepted | {dhe}"),
            "refused",
            dhe,
            "valid | asks for a client certificate",
            "209",
        ]
    );
    let outcome = |cell: &Cell| (cell.class.clone(), cell.title.clone());
    let some = |class: &str, title: &str| (Some(class.to_owned()), Some(title.to_owned()));
    assert_eq!(outcome(&sfb[2]), some("ok", ""), "TLS 1.0 accepted");
    assert_eq!(
        outcome(&sfb[3]),
        some("err", "answered TLS 1.0"),
        "TLS 1.1 downgraded"
    );
    assert_eq!(
        outcome(&sfb[4]),
        some("ok", "the server asks for a client certificate")
    );
    assert_eq!(outcome(&sfb[5]), some("no", "alert protocol_version (70)"));
    assert_eq!(sfb[8].class.as_deref(), Some("num"));
    let adfs = &table[2];
    assert_eq!(
        texts(adfs),
        [
            "adfs.contoso.com:443",
            "adfs",
            "—",
            "—",
            "accepted | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "no_answer",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "invalid | expired on 2026-11-01",
            "-22",
        ]
    );
    assert_eq!(outcome(&adfs[5]), some("err", "no answer in 5 s"));
    assert!(
        section(&page, "endpoints").contains("<span class=\"no\">invalid</span>"),
        "an invalid certificate is marked"
    );
    assert_eq!(
        texts(&table[3]),
        [
            "anon.contoso.com:8443",
            "custom",
            "—",
            "—",
            "accepted | 00A7",
            "—",
            "",
            "the server chose a suite without a certificate",
            "",
        ],
        "a suite without a name shows its code; no certificate, the reason"
    );

    // The verdict timeline: one band per verdict the store recorded, in order, the last one up
    // to now, each titled with its verdict and when it began.
    let timeline = section(&page, "timeline");
    let rects: Vec<&str> = timeline
        .split("<rect ")
        .skip(1)
        .map(|r| &r[..r.find("</rect>").expect("rect ends")])
        .collect();
    assert_eq!(verdicts.len(), 2, "{verdicts:#?}");
    let bands: Vec<(String, String)> = rects
        .iter()
        .map(|r| {
            let tag = format!("<rect {}", &r[..=r.find('>').expect("tag ends")]);
            (
                attribute(&tag, "class").expect("class"),
                text_of(&r[r.find("<title>").expect("a title")..]),
            )
        })
        .collect();
    let began = |i: usize| verdicts[i].at.to_rfc3339_secs();
    assert_eq!(
        bands,
        [
            (
                "v-not_ready".to_owned(),
                format!("not_ready from {}", began(1))
            ),
            ("v-at_risk".to_owned(), format!("at_risk from {}", began(0))),
        ],
        "oldest first"
    );
    let number = |r: &str, name: &str| -> f64 {
        attribute(&format!("<rect {r}"), name)
            .expect("the attribute")
            .parse()
            .expect("a number")
    };
    let (x0, x1, w1) = (
        number(rects[0], "x"),
        number(rects[1], "x"),
        number(rects[1], "width"),
    );
    assert!((0.0..=x1).contains(&x0), "{x0} {x1}");
    assert!(
        (x1 + w1 - 1000.0).abs() <= 1.1,
        "the last band reaches now: {x1} + {w1}"
    );
    let start = verdicts[1].at.min(detail.first_seen).to_rfc3339_secs();
    assert!(
        timeline.contains(&format!("<span>{start}</span><span>now</span>")),
        "the axis runs from the first sighting to now: {timeline}"
    );
    for verdict in Verdict::ALL {
        assert!(
            timeline.contains(&format!("data-verdict=\"{}\"", verdict.as_str())),
            "the legend names {verdict}"
        );
    }

    // Presence history: newest first, the reason of the last will shown.
    let presence_html = section(&page, "presence-history");
    let items: Vec<(String, String)> = presence_html
        .split("<li ")
        .skip(1)
        .map(|li| {
            let tag_end = li.find('>').expect("tag ends");
            let tag = format!("<li {}", &li[..=tag_end]);
            (
                attribute(&tag, "data-kind").expect("a kind"),
                text_of(&li[tag_end + 1..li.find("</li>").expect("li ends")]),
            )
        })
        .collect();
    let at = |i: usize| presence[i].at.to_rfc3339_secs();
    assert_eq!(
        items,
        [
            ("presence".to_owned(), format!("{} online", at(0))),
            (
                "presence".to_owned(),
                format!("{} offline (connection_lost)", at(1))
            ),
            ("presence".to_owned(), format!("{} online", at(2))),
        ]
    );
    assert!(
        section(&page, "summary").contains("<span class=\"badge p-online\">online</span>"),
        "the summary shows it online"
    );
    console.stop().await;
    broker.stop().await.expect("broker stops");
}
