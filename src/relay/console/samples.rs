//! Sample payloads for the console's "send a test webhook" action: one per family of
//! schemes, shaped like what that provider sends, each marked `hookrelay_test` so a
//! local service can tell a test from a real delivery.

/// A JSON body for a test webhook on a channel of scheme `scheme` (its `as_str` name),
/// sent at `now_unix` seconds.
pub fn payload(scheme: &str, now_unix: i64) -> String {
    let body = match scheme {
        "github" | "gitea" => serde_json::json!({
            "zen": "Keep it logically awesome.",
            "hook_id": 1,
            "hook": {"type": "Repository", "events": ["push"]},
            "hookrelay_test": true
        }),
        "gitlab" => {
            serde_json::json!({"object_kind": "push", "ref": "refs/heads/main", "hookrelay_test": true})
        }
        "stripe" => serde_json::json!({
            "id": "evt_hookrelay_test",
            "object": "event",
            "type": "hookrelay.test",
            "created": now_unix,
            "data": {"object": {}},
            "hookrelay_test": true
        }),
        "slack" => serde_json::json!({
            "type": "event_callback",
            "event": {"type": "app_mention", "text": "hookrelay test"},
            "event_time": now_unix,
            "hookrelay_test": true
        }),
        "shopify" => {
            serde_json::json!({"id": 1, "name": "#1001", "test": true, "hookrelay_test": true})
        }
        "standard" => serde_json::json!({
            "type": "hookrelay.test",
            "timestamp": now_unix,
            "data": {"message": "hello from the hookrelay console"},
            "hookrelay_test": true
        }),
        _ => serde_json::json!({
            "event": "hookrelay.test",
            "scheme": scheme,
            "sent_at": now_unix,
            "message": "hello from the hookrelay console",
            "hookrelay_test": true
        }),
    };
    serde_json::to_string_pretty(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_payload_is_json_and_marked() {
        for s in [
            "github", "stripe", "slack", "standard", "hmac", "none", "zoom",
        ] {
            let v: serde_json::Value = serde_json::from_str(&payload(s, 1)).expect("json");
            assert_eq!(v["hookrelay_test"], true, "{s}");
        }
    }
}
