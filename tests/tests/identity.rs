//! Identity end to end: bootstrap, tokens (create, expiry, revoke), owner
//! protection, the audit log, the role matrix and org isolation.

use devpulse::cli::{StorageArgs, TokenCreateArgs};
use devpulse_e2e::{Backend, TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn bootstrap_creates_one_owner_token_once(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let file = server.data_dir.join(devpulse::identity::bootstrap::TOKEN_FILE);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the bootstrap token is readable by its owner only");
    let (status, me) = server.get("/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["role"], "owner");
    let (_, orgs) = server.get("/api/v1/orgs").await;
    assert_eq!(orgs["items"].as_array().unwrap().len(), 1);
    assert_eq!(orgs["items"][0]["slug"], "default");

    let token_before = server.token.clone();
    let server = server.restart().await;
    let token_after = std::fs::read_to_string(&file).unwrap();
    assert_eq!(token_after.trim(), token_before, "a second start creates nothing");
    let (_, orgs) = server.get("/api/v1/orgs").await;
    assert_eq!(orgs["items"].as_array().unwrap().len(), 1);
    let (_, audit) = server.get("/api/v1/audit?action=org.bootstrap").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
    server.stop().await;
}

async fn tokens_are_refused_at_once_when_expired_or_revoked(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let (status, problem) = server.get_as("", "/api/v1/me").await;
    assert_eq!((status, problem["type"].as_str()), (401, Some("urn:devpulse:problem:unauthorized")));
    let (status, _) = server.get_as("dp_not-a-real-token", "/api/v1/me").await;
    assert_eq!(status, 401);
    let response = server.http.get(server.url("/api/v1/hello/greetings/Ann")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    let (status, created) = server.post("/api/v1/tokens", &json!({"name": "laptop"})).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("dp_"));
    let id = created["token"]["id"].as_str().unwrap().to_owned();
    assert_eq!(server.get_as(&secret, "/api/v1/me").await.0, 200);
    let (_, listed) = server.get("/api/v1/tokens").await;
    let text = listed.to_string();
    assert!(text.contains(&id) && !text.contains(&secret), "tokens are listed without their secret");

    let response = server.request(Method::DELETE, &format!("/api/v1/tokens/{id}")).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(server.get_as(&secret, "/api/v1/me").await.0, 401, "revoked tokens stop working at once");
    assert_eq!(server.get_as(&secret, "/api/v1/hello/greetings/Ann").await.0, 401);

    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let (_, created) = server.post("/api/v1/tokens", &json!({"name": "short", "expires_at": soon.to_rfc3339()})).await;
    let short = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(server.get_as(&short, "/api/v1/me").await.0, 200);
    let expired = server
        .wait_for(Duration::from_secs(10), || async {
            (server.get_as(&short, "/api/v1/me").await.0 == 401).then_some(())
        })
        .await;
    assert!(expired.is_some(), "an expired token is refused");
    // A time already past makes a token that never works (the document cannot say "in the future").
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (status, created) = server.post("/api/v1/tokens", &json!({"name": "x", "expires_at": past})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(server.get_as(created["secret"].as_str().unwrap(), "/api/v1/me").await.0, 401);
    server.stop().await;
}

async fn owners_are_protected(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let (_, me) = server.get("/api/v1/me").await;
    let owner = me["id"].as_str().unwrap().to_owned();
    let (admin_id, admin) = server.user_with_role("admin").await;

    let delete = |token: String, id: String| {
        let server = &server;
        async move { server.call_as(&token, Method::DELETE, &format!("/api/v1/users/{id}"), None).await }
    };
    let (status, problem) = delete(server.token.clone(), owner.clone()).await;
    assert_eq!(status, 409, "the last owner cannot be removed: {problem}");
    let (status, _) = server
        .call_as(&server.token, Method::PATCH, &format!("/api/v1/users/{owner}"), Some(&json!({"role": "admin"})))
        .await;
    assert_eq!(status, 409, "nor demoted");
    assert_eq!(delete(admin.clone(), owner.clone()).await.0, 403, "admins cannot remove owners");
    let (status, _) = server
        .call_as(&admin, Method::PATCH, &format!("/api/v1/users/{owner}"), Some(&json!({"role": "developer"})))
        .await;
    assert_eq!(status, 403, "admins cannot demote owners");
    let (status, _) = server
        .post_as(&admin, "/api/v1/users", &json!({"display_name": "x", "email": "x@example.com", "role": "owner"}))
        .await;
    assert_eq!(status, 403, "admins cannot make owners");
    let (status, _) = server
        .call_as(&admin, Method::PATCH, &format!("/api/v1/users/{admin_id}"), Some(&json!({"role": "owner"})))
        .await;
    assert_eq!(status, 403, "admins cannot promote themselves");

    let (second_owner, _) = server.user_with_role("owner").await;
    let (status, _) = server
        .call_as(&server.token, Method::PATCH, &format!("/api/v1/users/{owner}"), Some(&json!({"role": "admin"})))
        .await;
    assert_eq!(status, 200, "with a second owner, the first may step down");
    assert_eq!(delete(server.token.clone(), second_owner).await.0, 403, "now an admin, it cannot remove the owner");

    let (status, problem) = server
        .post(
            "/api/v1/users",
            &json!({"display_name": "Tz", "email": "tz@example.com", "role": "developer", "time_zone": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    let (status, user) = server
        .post(
            "/api/v1/users",
            &json!({"display_name": "Dev", "email": "dev@example.com", "role": "developer", "time_zone": "Europe/Berlin",
                    "identities": [{"provider": "github", "login": "octocat"}]}),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["identities"], json!([{"provider": "github", "login": "octocat"}]));
    let (status, _) = server
        .post(
            "/api/v1/users",
            &json!({"display_name": "Dup", "email": "dup@example.com", "role": "developer",
                                       "identities": [{"provider": "github", "login": "octocat"}]}),
        )
        .await;
    assert_eq!(status, 409, "one GitHub login maps to one user");
    server.stop().await;
}

async fn changes_are_audited_with_actor_and_token(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let (dev_id, dev_token) = server.user_with_role("developer").await;
    let (_, created) = server.post("/api/v1/tokens", &json!({"name": "temp"})).await;
    let token_id = created["token"]["id"].as_str().unwrap().to_owned();
    server.request(Method::DELETE, &format!("/api/v1/tokens/{token_id}")).send().await.unwrap();
    server
        .call_as(&server.token, Method::PATCH, &format!("/api/v1/users/{dev_id}"), Some(&json!({"role": "manager"})))
        .await;
    server.post("/api/v1/plugins/hello/disable", &json!({})).await;
    server.post("/api/v1/plugins/hello/enable", &json!({})).await;

    let (status, page) = server.get("/api/v1/audit?limit=200").await;
    assert_eq!(status, 200, "{page}");
    let actions: Vec<&str> = page["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in [
        "org.bootstrap",
        "user.create",
        "token.create",
        "token.revoke",
        "user.update",
        "plugin.disable",
        "plugin.enable",
    ] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    assert_eq!(actions.first(), Some(&"plugin.enable"), "newest first");
    let (_, me) = server.get("/api/v1/me").await;
    let revoke = page["items"].as_array().unwrap().iter().find(|e| e["action"] == "token.revoke").unwrap();
    assert_eq!(revoke["actor_user_id"], me["id"]);
    assert!(revoke["actor_token_id"].is_string());
    assert_eq!(revoke["target"], format!("token/{token_id}"));

    let (_, filtered) = server.get("/api/v1/audit?action=user.update").await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/audit?limit=2&cursor={cursor}"),
            None => "/api/v1/audit?limit=2".into(),
        };
        let (_, page) = server.get(&path).await;
        seen += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, actions.len(), "paging walks every entry once");
    let (status, _) = server.get_as(&dev_token, "/api/v1/audit").await;
    assert_eq!(status, 403, "managers (the developer was promoted) cannot read the audit log");
    server.stop().await;
}

on_both_backends!(
    bootstrap_creates_one_owner_token_once,
    tokens_are_refused_at_once_when_expired_or_revoked,
    owners_are_protected,
    changes_are_audited_with_actor_and_token,
);

/// Two replicas on one PostgreSQL and one Redis: a token revoked through one is
/// refused by the other at once, although the other had cached it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_every_replica() {
    let options = devpulse_e2e::Options { redis: true, ..Default::default() };
    let Some(first) = TestServer::start_with(Backend::Postgres, options).await else { return };
    let second = first.replica().await;
    let (_, created) = first.post("/api/v1/tokens", &json!({"name": "shared"})).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["token"]["id"].as_str().unwrap().to_owned();
    assert_eq!(second.get_as(&secret, "/api/v1/me").await.0, 200, "the second replica caches the principal");
    let response = first.request(Method::DELETE, &format!("/api/v1/tokens/{id}")).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let refused = second
        .wait_for(Duration::from_secs(3), || async {
            (second.get_as(&secret, "/api/v1/me").await.0 == 401).then_some(())
        })
        .await;
    assert!(refused.is_some(), "the revocation reached the other replica well within the cache lifetime");
    second.stop().await;
    first.stop().await;
}

/// Every role against every host route and the `hello` routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_matrix() {
    let server = TestServer::start(Backend::Sqlite).await.expect("sqlite needs nothing");
    let mut tokens = Vec::new();
    for role in ["developer", "manager", "admin", "owner"] {
        tokens.push((role, server.user_with_role(role).await));
    }
    let (victim, _) = server.user_with_role("developer").await;
    // (method, path, body, the lowest role allowed, or None for operator tokens only)
    let routes: Vec<(Method, String, Option<Value>, Option<&str>)> = vec![
        (Method::GET, "/api/v1/me".into(), None, Some("developer")),
        (Method::GET, "/api/v1/plugins".into(), None, Some("developer")),
        (Method::GET, "/api/v1/plugins/hello".into(), None, Some("developer")),
        (Method::GET, "/api/v1/tokens".into(), None, Some("developer")),
        (Method::POST, "/api/v1/tokens".into(), Some(json!({"name": "mine"})), Some("developer")),
        (Method::GET, "/api/v1/users".into(), None, Some("admin")),
        (Method::GET, format!("/api/v1/users/{victim}"), None, Some("admin")),
        (Method::PATCH, format!("/api/v1/users/{victim}"), Some(json!({"display_name": "Renamed"})), Some("admin")),
        (Method::GET, "/api/v1/audit".into(), None, Some("admin")),
        (Method::GET, "/api/v1/orgs".into(), None, None),
        (
            Method::POST,
            "/api/v1/users".into(),
            Some(json!({"display_name": "New", "email": "new@example.com", "role": "developer"})),
            Some("admin"),
        ),
        (Method::POST, "/api/v1/plugins/hello/disable".into(), Some(json!({})), None),
        (Method::POST, "/api/v1/plugins/hello/enable".into(), Some(json!({})), None),
        (Method::GET, "/api/v1/hello/whoami".into(), None, Some("developer")),
        (Method::GET, "/api/v1/hello/greetings/Ann".into(), None, Some("developer")),
        (Method::POST, "/api/v1/hello/greetings".into(), Some(json!({"name": "Ann"})), Some("developer")),
    ];
    let rank = |role: &str| ["developer", "manager", "admin", "owner"].iter().position(|r| *r == role).unwrap();
    for (method, path, body, lowest) in &routes {
        for (role, (_, token)) in &tokens {
            let (status, answer) = server.call_as(token, method.clone(), path, body.as_ref()).await;
            let allowed = lowest.is_some_and(|lowest| rank(role) >= rank(lowest));
            if allowed {
                assert!((200..300).contains(&status), "{role} {method} {path}: {status} {answer}");
            } else {
                assert_eq!(status, 403, "{role} {method} {path}: {answer}");
                assert_eq!(answer["type"], "urn:devpulse:problem:forbidden");
            }
        }
        let (status, _) = server.call_as(&server.token, method.clone(), path, body.as_ref()).await;
        assert!((200..300).contains(&status), "the operator owner may {method} {path}: {status}");
        let (status, _) = server.call_as("", method.clone(), path, body.as_ref()).await;
        assert_eq!(status, 401, "{method} {path} without a token");
    }
    let (status, _) = server.call_as(&tokens[2].1.1, Method::DELETE, &format!("/api/v1/users/{victim}"), None).await;
    assert_eq!(status, 204, "admins remove developers");
    let (status, _) = server
        .call_as(&tokens[1].1.1, Method::POST, "/api/v1/tokens", Some(&json!({"name": "x", "user_id": tokens[0].1.0})))
        .await;
    assert_eq!(status, 403, "managers cannot make tokens for others");
    server.stop().await;
}

/// Fills the parameters of an OpenAPI path with the first org's identifiers.
fn concrete(path: &str, user_id: &str) -> String {
    path.replace("{id}", user_id)
        .replace("{name}", "hello")
        .replace("/api/v1/hello/greetings/hello", "/api/v1/hello/greetings/Ann")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_org_sees_nothing_of_the_first() {
    let server = TestServer::start(Backend::Sqlite).await.expect("sqlite needs nothing");
    let (first_user, _) = server.user_with_role("developer").await;
    server.post("/api/v1/hello/greetings", &json!({"name": "Ann"})).await;
    let (_, me) = server.get("/api/v1/me").await;
    let (_, first_tokens) = server.get("/api/v1/tokens").await;
    let mut secrets_of_first: Vec<String> =
        vec![first_user.clone(), me["id"].as_str().unwrap().into(), me["org_id"].as_str().unwrap().into()];
    secrets_of_first
        .extend(first_tokens["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()));

    let second = server.another_org("second").await;

    let document = server.document().await;
    let mut walked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        if item.get("get").is_none() || !path.starts_with("/api/v1") {
            continue;
        }
        // The live stream never ends a response; tests/stream.rs covers its orgs.
        let responses = &item["get"]["responses"];
        if responses.get("101").is_some() || responses["200"]["content"].get("text/event-stream").is_some() {
            continue;
        }
        let concrete = concrete(path, &first_user);
        let (status, body) = server.get_as(&second, &concrete).await;
        walked += 1;
        let text = body.to_string();
        // An id the caller sent may be echoed back; nothing else of the first org may appear.
        for secret in secrets_of_first.iter().filter(|secret| !concrete.contains(secret.as_str())) {
            assert!(!text.contains(secret.as_str()), "GET {concrete} shows the first org's {secret}: {text}");
        }
        if path.contains("/users/{id}") {
            assert_eq!(status, 404, "GET {concrete}: ids of the first org do not exist for the second");
        }
        if path == "/api/v1/hello/greetings/{name}" {
            assert_eq!(body["times_greeted"], 0, "plugin storage is per org");
        }
        if let Some(items) = body["items"].as_array()
            && path != "/api/v1/plugins"
        {
            assert!(items.iter().all(|item| !item.to_string().contains(&first_user)), "GET {concrete}: {body}");
        }
    }
    assert!(walked >= 8, "walked {walked} GET paths");
    let (_, users) = server.get_as(&second, "/api/v1/users").await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1, "only the second org's owner");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_tokens_while_the_server_runs() {
    let server = TestServer::start(Backend::Sqlite).await.expect("sqlite needs nothing");
    let args = TokenCreateArgs {
        org: "cli-org".into(),
        user: "Robin".into(),
        role: devpulse::auth::Role::Manager,
        operator: false,
        name: "cli".into(),
        storage: StorageArgs { data_dir: server.data_dir.clone(), database_url: None, config: None },
    };
    let secret = devpulse::cli::create_token(&args).await.unwrap();
    let (status, me) = server.get_as(&secret, "/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!((me["display_name"].as_str(), me["role"].as_str()), (Some("Robin"), Some("manager")));
    let (status, whoami) = server.get_as(&secret, "/api/v1/hello/whoami").await;
    assert_eq!(status, 200, "{whoami}");
    assert_eq!(whoami["display_name"], "Robin", "plugins see the caller through the identity import");
    let again = devpulse::cli::create_token(&args).await.unwrap();
    let (_, me_again) = server.get_as(&again, "/api/v1/me").await;
    assert_eq!(me_again["id"], me["id"], "the second token belongs to the same user");
    assert_eq!(server.get_as(&secret, "/api/v1/orgs").await.0, 403, "not an operator");
    server.stop().await;
}
