//! Every finding code is documented in docs/findings.md, the table dashboards build on.

#[test]
fn every_code_has_a_row_in_docs_findings() {
    let codes = include_str!("../src/codes.rs");
    let docs = include_str!("../../docs/findings.md");
    let mut count = 0;
    for line in codes.lines() {
        let Some(rest) = line.trim().strip_prefix("pub const ") else {
            continue;
        };
        let name = rest.split(':').next().expect("a const has a name").trim();
        if name == "ALL" {
            continue;
        }
        count += 1;
        assert!(
            roomready_protocol::codes::ALL.contains(&name),
            "{name} is missing from codes::ALL"
        );
        assert!(
            docs.contains(&format!("| `{name}` |")),
            "{name} is not documented in docs/findings.md"
        );
    }
    assert_eq!(
        count,
        roomready_protocol::codes::ALL.len(),
        "codes::ALL has extras"
    );
    assert!(
        count >= 20,
        "found only {count} codes: did codes.rs change shape?"
    );
}
