//! The throwaway PostgreSQL cluster: it starts on a free loopback port, answers SQL, keeps what
//! is written while it runs, and two clusters run side by side.
#![cfg(unix)]

use roomready_testkit::postgres::need_postgres;

#[test]
fn a_throwaway_cluster_answers_sql_and_two_run_side_by_side() {
    let test = "a_throwaway_cluster_answers_sql_and_two_run_side_by_side";
    let Some(first) = need_postgres(test) else {
        return;
    };
    let Some(second) = need_postgres(test) else {
        return;
    };
    assert_ne!(first.port(), second.port());
    first
        .psql("CREATE TABLE t (n integer); INSERT INTO t VALUES (41), (1);")
        .expect("create and insert");
    assert_eq!(first.psql("SELECT sum(n) FROM t").expect("select"), "42");
    let error = second
        .psql("SELECT sum(n) FROM t")
        .expect_err("another cluster");
    assert!(error.contains("does not exist"), "{error}");
    assert!(
        first
            .psql("SHOW listen_addresses")
            .expect("show")
            .contains("127.0.0.1"),
        "loopback only"
    );
    assert!(first.url().starts_with("postgres://postgres@127.0.0.1:"));
}
