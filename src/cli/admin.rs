//! `hookrelay dlq list|redrive` and `hookrelay groups list|reset`: the admin API
//! ([`crate::relay::admin::groups`]) from the command line.
//!
//! These talk plain HTTP(S) to the relay with the admin token — not the agent
//! WebSocket — so `--relay` is the relay's base URL; `ws://`/`wss://` (what agents are
//! given) are accepted and mapped to `http://`/`https://`, and a trailing `/v1/stream`
//! is dropped, so the same URL works for every subcommand. The admin token comes from
//! `--admin-token`/`HOOKRELAY_ADMIN_TOKEN`, or else from the password of the URL
//! (`https://admin:TOKEN@relay`, sent as `Authorization: Bearer TOKEN`, never as Basic
//! auth); a user name without a password is refused. Output is a table for a
//! person, or the API's JSON with `--json` for scripts. A refusal by the relay prints
//! its code and message; exit 2 when the request itself is wrong (token, channel,
//! offset), 1 when the relay could not be reached or failed.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use reqwest::Url;
use serde_json::Value;

use crate::cli::exit::Failure;

/// Longest one admin request may take.
pub const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach the relay's admin API.
#[derive(Debug, Clone, Args)]
pub struct AdminConn {
    /// The relay's base URL: http(s)://host:port (ws(s):// is mapped to http(s)://).
    /// A password in it (https://admin:TOKEN@host) is the admin token when
    /// --admin-token is not given; a user name without a password is refused.
    #[arg(long)]
    pub relay: String,
    /// The relay's admin token (default: the password of the --relay URL).
    #[arg(long, env = "HOOKRELAY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// PEM file of a CA to trust for https:// (instead of the web PKI roots).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
}

/// `hookrelay dlq`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    /// `list` or `redrive`.
    #[command(subcommand)]
    pub command: DlqCommand,
}

/// What `hookrelay dlq` does.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters of a channel (all groups, or one).
    List(DlqListArgs),
    /// Deliver dead letters to their group again; they leave the list once acked.
    Redrive(DlqRedriveArgs),
}

/// `hookrelay dlq list`.
#[derive(Debug, Args)]
pub struct DlqListArgs {
    /// The relay and the admin token.
    #[command(flatten)]
    pub conn: AdminConn,
    /// The channel.
    #[arg(long)]
    pub channel: String,
    /// Only this consumer group.
    #[arg(long)]
    pub group: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `hookrelay dlq redrive`.
#[derive(Debug, Args)]
pub struct DlqRedriveArgs {
    /// The relay and the admin token.
    #[command(flatten)]
    pub conn: AdminConn,
    /// The channel.
    #[arg(long)]
    pub channel: String,
    /// The consumer group.
    #[arg(long)]
    pub group: String,
    /// Only this dead letter (repeatable); default: all of the group's.
    #[arg(long = "offset")]
    pub offsets: Vec<u64>,
    /// Print the relay's JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// `hookrelay groups`.
#[derive(Debug, Args)]
pub struct GroupsArgs {
    /// `list` or `reset`.
    #[command(subcommand)]
    pub command: GroupsCommand,
}

/// What `hookrelay groups` does.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List a channel's consumer groups with cursor, lag and dead letters.
    List(GroupsListArgs),
    /// Move a group's cursor (backwards too): the next event it receives is the target.
    Reset(GroupsResetArgs),
}

/// `hookrelay groups list`.
#[derive(Debug, Args)]
pub struct GroupsListArgs {
    /// The relay and the admin token.
    #[command(flatten)]
    pub conn: AdminConn,
    /// The channel.
    #[arg(long)]
    pub channel: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `hookrelay groups reset`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["to_offset", "to_time"])))]
pub struct GroupsResetArgs {
    /// The relay and the admin token.
    #[command(flatten)]
    pub conn: AdminConn,
    /// The channel.
    #[arg(long)]
    pub channel: String,
    /// The consumer group.
    #[arg(long)]
    pub group: String,
    /// The next offset the group receives (earliest ..= head + 1).
    #[arg(long)]
    pub to_offset: Option<u64>,
    /// The first event received at or after this RFC 3339 time.
    #[arg(long)]
    pub to_time: Option<String>,
    /// Print the relay's JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hookrelay dlq ...`.
pub async fn run_dlq(args: DlqArgs) -> Result<(), Failure> {
    match args.command {
        DlqCommand::List(a) => dlq_list(a).await,
        DlqCommand::Redrive(a) => dlq_redrive(a).await,
    }
}

/// Runs `hookrelay groups ...`.
pub async fn run_groups(args: GroupsArgs) -> Result<(), Failure> {
    match args.command {
        GroupsCommand::List(a) => groups_list(a).await,
        GroupsCommand::Reset(a) => groups_reset(a).await,
    }
}

async fn dlq_list(a: DlqListArgs) -> Result<(), Failure> {
    let client = Client::new(&a.conn)?;
    let channel = name("--channel", &a.channel)?;
    let groups = match &a.group {
        Some(g) => vec![name("--group", g)?.to_string()],
        None => group_names(&client.get(&format!("channels/{channel}/groups")).await?),
    };
    let mut letters: Vec<Value> = Vec::new();
    for g in &groups {
        let answer = client
            .get(&format!("channels/{channel}/groups/{g}/dead-letters"))
            .await?;
        for mut d in array(&answer, "dead_letters") {
            if let Some(obj) = d.as_object_mut() {
                obj.insert("group".into(), Value::String(g.clone()));
            }
            letters.push(d);
        }
    }
    if a.json {
        let out = serde_json::json!({ "channel": channel, "dead_letters": letters });
        println!("{out}");
        return Ok(());
    }
    let mut rows = vec![row(&[
        "GROUP", "OFFSET", "ATTEMPTS", "STATUS", "AT", "REDRIVE", "REASON",
    ])];
    for d in &letters {
        rows.push(vec![
            text(&d["group"]),
            text(&d["offset"]),
            text(&d["attempts"]),
            text(&d["last_status"]),
            text(&d["at"]),
            if d["redrive_pending"] == Value::Bool(true) {
                "pending"
            } else {
                "-"
            }
            .into(),
            text(&d["reason"]),
        ]);
    }
    print_table(&rows);
    if letters.is_empty() {
        eprintln!("no dead letters on channel {channel}");
    }
    Ok(())
}

async fn dlq_redrive(a: DlqRedriveArgs) -> Result<(), Failure> {
    let client = Client::new(&a.conn)?;
    let channel = name("--channel", &a.channel)?;
    let group = name("--group", &a.group)?;
    let body = if a.offsets.is_empty() {
        None
    } else {
        Some(serde_json::json!({ "offsets": a.offsets }))
    };
    let answer = client
        .post(
            &format!("channels/{channel}/groups/{group}/dead-letters/redrive"),
            body,
        )
        .await?;
    if a.json {
        println!("{answer}");
        return Ok(());
    }
    let offsets: Vec<String> = array(&answer, "redriven").iter().map(text).collect();
    if offsets.is_empty() {
        println!("group {group} of channel {channel} has no dead letters to redrive");
        return Ok(());
    }
    println!(
        "redriving {} dead letter(s) of group {group} on channel {channel}: offsets {}",
        offsets.len(),
        offsets.join(", ")
    );
    if answer["active"] != Value::Bool(true) {
        println!("no agent of the group is connected: they are delivered when one subscribes");
    }
    Ok(())
}

async fn groups_list(a: GroupsListArgs) -> Result<(), Failure> {
    let client = Client::new(&a.conn)?;
    let channel = name("--channel", &a.channel)?;
    let answer = client.get(&format!("channels/{channel}/groups")).await?;
    if a.json {
        println!("{answer}");
        return Ok(());
    }
    let mut rows = vec![row(&["GROUP", "CURSOR", "LAG", "DEAD_LETTERS", "ACTIVE"])];
    for g in array(&answer, "groups") {
        rows.push(vec![
            text(&g["name"]),
            text(&g["cursor"]),
            text(&g["lag"]),
            text(&g["dead_letters"]),
            if g["active"] == Value::Bool(true) {
                "yes"
            } else {
                "no"
            }
            .into(),
        ]);
    }
    print_table(&rows);
    Ok(())
}

async fn groups_reset(a: GroupsResetArgs) -> Result<(), Failure> {
    let client = Client::new(&a.conn)?;
    let channel = name("--channel", &a.channel)?;
    let group = name("--group", &a.group)?;
    let body = match (a.to_offset, &a.to_time) {
        (Some(n), None) => serde_json::json!({ "offset": n }),
        (None, Some(t)) => {
            // Checked here too, so a typo is a usage error before anything is sent.
            crate::common::time::parse_time_ms(t)
                .map_err(|e| Failure::usage(anyhow::anyhow!("--to-time {t:?}: {e}")))?;
            serde_json::json!({ "time": t })
        }
        _ => {
            return Err(Failure::usage(anyhow::anyhow!(
                "give exactly one of --to-offset and --to-time"
            )))
        }
    };
    let answer = client
        .post(
            &format!("channels/{channel}/groups/{group}/reset"),
            Some(body),
        )
        .await?;
    if a.json {
        println!("{answer}");
        return Ok(());
    }
    println!(
        "group {group} of channel {channel} reset: the next event it receives is {} (cursor {}, was {})",
        text(&answer["next"]),
        text(&answer["cursor"]),
        text(&answer["previous_cursor"]),
    );
    Ok(())
}

/// A checked channel or group name (they go into the URL path).
fn name<'a>(flag: &str, value: &'a str) -> Result<&'a str, Failure> {
    if crate::common::config::valid_channel_name(value) {
        Ok(value)
    } else {
        Err(Failure::usage(anyhow::anyhow!(
            "{flag} {value:?}: must match [A-Za-z0-9_-]{{1,64}}"
        )))
    }
}

fn group_names(answer: &Value) -> Vec<String> {
    array(answer, "groups")
        .iter()
        .filter_map(|g| g["name"].as_str().map(str::to_string))
        .collect()
}

fn array(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

/// A JSON value as a table cell: strings bare, null as "-".
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Left-aligned columns; the last one is not padded (it may be long, e.g. a reason).
fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let pad = widths.get(i).copied().unwrap_or(0);
                line.push_str(&format!("{cell:<pad$}  "));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// The admin API base of `relay` (without userinfo) and the admin token: `flag_token`
/// (from `--admin-token` or the environment) when given, else the URL's password.
pub fn admin_target(
    relay: &str,
    flag_token: Option<&str>,
) -> Result<(Url, Option<String>), String> {
    let mut base = http_base(relay)?;
    let password = base.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    let has_user = !base.username().is_empty();
    // Dropped in any case: the HTTP client would send it as Basic auth.
    let _ = base.set_username("");
    let _ = base.set_password(None);
    let token = match flag_token.filter(|t| !t.is_empty()) {
        Some(t) => Some(t.to_string()),
        None if password.is_none() && has_user => {
            return Err(format!(
                "--relay {:?}: a user name without a password; give the admin token as the \
                 password (https://admin:TOKEN@host) or with --admin-token",
                crate::common::redact::redact(relay)
            ))
        }
        None => password.filter(|p| !p.is_empty()),
    };
    Ok((base, token))
}

/// The relay's admin API base: `http(s)://host:port[/prefix]` (userinfo kept).
pub fn http_base(input: &str) -> Result<Url, String> {
    let bad = || {
        format!(
            "--relay {:?}: expected an http://, https://, ws:// or wss:// URL",
            crate::common::redact::redact(input)
        )
    };
    let mut mapped = crate::agent::dial::map_scheme(input, "http", "https").ok_or_else(bad)?;
    let path = mapped.path().trim_end_matches('/');
    let path = path
        .strip_suffix(crate::agent::dial::STREAM_PATH)
        .unwrap_or(path);
    let path = format!("{path}/");
    mapped.set_path(&path);
    mapped.set_query(None);
    mapped.set_fragment(None);
    Ok(mapped)
}

/// A small JSON client for the admin API.
struct Client {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    fn new(conn: &AdminConn) -> Result<Client, Failure> {
        let (base, token) = admin_target(&conn.relay, conn.admin_token.as_deref())
            .map_err(|m| Failure::usage(anyhow::anyhow!(m)))?;
        let mut builder = reqwest::Client::builder().timeout(ADMIN_REQUEST_TIMEOUT);
        if let Some(ca) = &conn.ca_cert {
            let tls = crate::common::tls::client_config(&crate::common::tls::TlsFiles {
                ca_cert: Some(ca.as_path()),
                client_cert: None,
            })
            .map_err(Failure::usage)?;
            builder = builder.use_preconfigured_tls((*tls).clone());
        }
        let http = builder
            .build()
            .map_err(|e| Failure::from(anyhow::anyhow!("cannot set up the HTTP client: {e}")))?;
        Ok(Client { base, token, http })
    }

    fn url(&self, path: &str) -> Result<Url, Failure> {
        self.base
            .join(&format!("v1/{path}"))
            .map_err(|e| Failure::usage(anyhow::anyhow!("bad URL: {e}")))
    }

    async fn get(&self, path: &str) -> Result<Value, Failure> {
        let req = self.http.get(self.url(path)?);
        self.send(req).await
    }

    async fn post(&self, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let mut req = self.http.post(self.url(path)?);
        if let Some(b) = body {
            req = req
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        self.send(req).await
    }

    async fn send(&self, mut req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let where_ = crate::common::redact::redact(self.base.as_str());
        let resp = req.send().await.map_err(|e| {
            Failure::from(anyhow::anyhow!(
                "cannot reach the relay at {where_}: {}",
                crate::common::redact::redact(&e.to_string())
            ))
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| {
            Failure::from(anyhow::anyhow!("reading the relay's answer failed: {e}"))
        })?;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        Err(refusal(status.as_u16(), &json, self.token.is_some()))
    }
}

/// A relay refusal as a failure: exit 2 for what the user must fix, 1 otherwise.
fn refusal(status: u16, json: &Value, had_token: bool) -> Failure {
    use crate::agent::clip::{clip, MAX_RELAY_CODE_BYTES, MAX_RELAY_MESSAGE_BYTES};
    let code = json["error"].as_str().unwrap_or("unknown");
    let message = json["message"].as_str().unwrap_or("(no message)");
    let hint = match (status, code) {
        (401, _) if !had_token => " (pass --admin-token or set HOOKRELAY_ADMIN_TOKEN)",
        (404, "not_found") => {
            " (is the admin API enabled — admin_token in the relay's config — and is --relay the relay's base URL?)"
        }
        _ => "",
    };
    // The relay's words are printed as they come: clipped to one short line.
    let (code, message) = (
        clip(code, MAX_RELAY_CODE_BYTES),
        clip(message, MAX_RELAY_MESSAGE_BYTES),
    );
    let error = anyhow::anyhow!("the relay answered {status}: {code}: {message}{hint}");
    if (400..500).contains(&status) {
        Failure::usage(error)
    } else {
        Failure::from(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_map_to_the_http_base() {
        for (input, want) in [
            ("http://h:1", "http://h:1/"),
            ("ws://h:1", "http://h:1/"),
            ("wss://h/v1/stream", "https://h/"),
            ("https://h/relay/", "https://h/relay/"),
            ("http://h:1/prefix/v1/stream?x=1", "http://h:1/prefix/"),
        ] {
            assert_eq!(http_base(input).expect(input).as_str(), want, "{input}");
        }
        for bad in ["ftp://h", "h:1", "", "http://"] {
            assert!(http_base(bad).is_err(), "{bad}");
        }
        let base = http_base("ws://h:1/p").expect("url");
        assert_eq!(
            base.join("v1/channels/c/groups").expect("join").as_str(),
            "http://h:1/p/v1/channels/c/groups"
        );
    }

    #[test]
    fn the_admin_token_comes_from_the_flag_or_the_urls_password() {
        let (base, token) = admin_target("https://admin:s%40cret@h:1/p", None).expect("ok");
        assert_eq!(
            base.as_str(),
            "https://h:1/p/",
            "no userinfo left for Basic auth"
        );
        assert_eq!(token.as_deref(), Some("s@cret"));
        let (base, token) = admin_target("ws://:tok@h:1", None).expect("ok");
        assert_eq!(
            (base.as_str(), token.as_deref()),
            ("http://h:1/", Some("tok"))
        );
        let (_, token) = admin_target("http://admin:url@h", Some("flag")).expect("ok");
        assert_eq!(token.as_deref(), Some("flag"), "the flag wins");
        let (_, token) = admin_target("http://admin:url@h", Some("")).expect("ok");
        assert_eq!(token.as_deref(), Some("url"), "an empty flag is no flag");
        let (_, token) = admin_target("http://h", None).expect("ok");
        assert_eq!(token, None);
        let (base, token) = admin_target("http://someone@h", Some("flag")).expect("ok");
        assert_eq!(
            (base.as_str(), token.as_deref()),
            ("http://h/", Some("flag"))
        );
        let e = admin_target("http://s3cret-user@h/x?k=v", None).unwrap_err();
        assert!(e.contains("password") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn refusals_map_to_exit_codes() {
        let json = serde_json::json!({"error": "offset_out_of_range", "message": "m"});
        assert_eq!(refusal(400, &json, true).code, crate::cli::exit::EXIT_USAGE);
        assert_eq!(
            refusal(503, &json, true).code,
            crate::cli::exit::EXIT_FAILURE
        );
        let f = refusal(401, &serde_json::json!({"error": "unauthorized"}), false);
        assert!(f.error.to_string().contains("HOOKRELAY_ADMIN_TOKEN"));
        let long = serde_json::json!({"error": "e", "message": "x\n".repeat(1 << 19)});
        let f = refusal(500, &long, true).error.to_string();
        assert!(f.len() < 1024 && f.ends_with("… (1048576 bytes)"), "{f}");
        assert!(!f.contains('\n'));
    }
}
