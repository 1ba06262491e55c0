mod common;
use common::*;
use hookrelay::verify::SchemeKind;

#[test]
fn ingest_smoke() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = RelayProc::start(
        dir.path(),
        "admin_token = \"adm\"",
        "[[channel]]\nname = \"gh\"\nscheme = \"github\"\nsecrets = [\"s\"]\n",
    );
    let (status, json) = post_signed(
        &relay.url("/hooks/gh"),
        SchemeKind::Github,
        "s",
        b"{}",
        None,
        &[],
    );
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["offset"], 1);
}
