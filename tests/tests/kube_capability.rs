//! The `kube` capability through a real plugin (the `kube-probe` fixture),
//! the real kube client in the host, and the fake API server: applies are
//! server-side applies under the plugin's field manager, labelled with the
//! plugin and the caller's org; a plugin sees only its org's objects; anything
//! outside the granted namespaces and kinds is denied.

use devpulse_e2e::kube::{
    PROBE, deployment, install_probe, namespace, operator_apply, probe_apply as apply, probe_server,
};
use devpulse_e2e::{Backend, Options, TestServer};
use fake_kube::{Config, FakeKube};
use serde_json::json;

#[tokio::test]
async fn a_plugin_applies_reads_lists_and_deletes_only_its_orgs_objects_where_granted() {
    let fake = FakeKube::start("127.0.0.1:0", Config::default()).await.expect("the fake starts");
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = probe_server(&fake, dir.path(), r#""Namespace", "Deployment""#).await;
    let owner = server.token.clone();
    // Its pods watch names a kind outside the grant: listed, not granted, never run.
    let (_, plugin) = server.plugin("kube-probe").await;
    assert_eq!((&plugin["watches"][0]["granted"], &plugin["watches"][1]["granted"]), (&json!(true), &json!(false)));

    // Apply: the host labels the object and applies it under the plugin's field manager.
    assert_eq!(apply(&server, &owner, &namespace("ws-ada"), false).await.0, 200);
    let (status, stored) = apply(&server, &owner, &deployment("ws-ada", "ide", 1), false).await;
    assert_eq!(status, 200, "{stored}");
    let labels = &stored["metadata"]["labels"];
    assert_eq!(labels["app"], "ide");
    assert_eq!(labels["devpulse.dev/plugin"], "kube-probe");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "devpulse");
    let org = labels["devpulse.dev/org"].as_str().expect("the org label").to_owned();
    assert_eq!(stored["spec"]["template"]["metadata"]["labels"]["devpulse.dev/org"], org, "its pods carry the org too");
    let in_cluster = fake.objects("apps/v1", "Deployment", Some("ws-ada"));
    assert_eq!(in_cluster.len(), 1);
    assert_eq!(in_cluster[0]["metadata"]["managedFields"][0]["manager"], "devpulse.kube-probe");

    // Applying again is idempotent: the same object, its spec unchanged.
    let (_, again) = apply(&server, &owner, &deployment("ws-ada", "ide", 1), false).await;
    assert_eq!(again["metadata"]["uid"], stored["metadata"]["uid"]);
    assert_eq!((&again["metadata"]["generation"], &stored["metadata"]["generation"]), (&json!(1), &json!(1)));

    // Read and list, the org's own objects.
    let read = format!("{PROBE}/object?api_version=apps/v1&kind=Deployment&namespace=ws-ada&name=ide");
    let (status, found) = server.get_as(&owner, &read).await;
    assert_eq!((status, &found["metadata"]["uid"]), (200, &stored["metadata"]["uid"]));
    let (status, page) = server
        .get_as(
            &owner,
            &format!("{PROBE}/objects?api_version=apps/v1&kind=Deployment&namespace=ws-ada&labels=app%3Dide"),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));

    // Another org sees none of it and cannot take it over.
    let eve = server.another_org("other").await;
    assert_eq!(server.get_as(&eve, &read).await.0, 404);
    let (_, empty) =
        server.get_as(&eve, &format!("{PROBE}/objects?api_version=apps/v1&kind=Deployment&namespace=ws-ada")).await;
    assert_eq!(empty["items"], json!([]));
    let (status, refused) = apply(&server, &eve, &deployment("ws-ada", "ide", 3), true).await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused["detail"].as_str().is_some_and(|d| d.contains("not this org's")), "{refused}");
    assert_eq!(server.call_as(&eve, reqwest::Method::DELETE, &read, None).await.0, 404);
    let mut beside = deployment("ws-ada", "ide", 1);
    beside["metadata"]["name"] = json!("eves");
    let (status, refused) = apply(&server, &eve, &beside, false).await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused["detail"].as_str().is_some_and(|d| d.contains("namespace ws-ada is another org's")), "{refused}");
    assert_eq!(fake.objects("apps/v1", "Deployment", Some("ws-ada"))[0]["metadata"]["labels"]["devpulse.dev/org"], org);

    // Outside the grant: another namespace, a kind not granted, a cluster-scoped kind.
    let (status, denied) = apply(&server, &owner, &deployment("kube-system", "ide", 1), false).await;
    assert_eq!(status, 403, "{denied}");
    assert!(denied["detail"].as_str().is_some_and(|d| d.contains("namespace kube-system")), "{denied}");
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ws-ada"}});
    let (status, denied) = apply(&server, &owner, &secret, false).await;
    assert_eq!(status, 403, "{denied}");
    assert!(denied["detail"].as_str().is_some_and(|d| d.contains("kind Secret")), "{denied}");
    assert_eq!(apply(&server, &owner, &namespace("default"), false).await.0, 403);
    assert!(fake.objects("v1", "Secret", None).is_empty(), "nothing denied reached the cluster");

    // A field another manager owns is a conflict, unless forced.
    operator_apply(&fake, &deployment("ws-ada", "ide", 2)).await;
    let (status, conflict) = apply(&server, &owner, &deployment("ws-ada", "ide", 1), false).await;
    assert_eq!(status, 409, "{conflict}");
    assert!(conflict["detail"].as_str().is_some_and(|d| d.contains(".spec.replicas")), "{conflict}");
    let (status, forced) = apply(&server, &owner, &deployment("ws-ada", "ide", 1), true).await;
    assert_eq!((status, &forced["spec"]["replicas"]), (200, &json!(1)));

    // Invalid input and a namespace that does not exist.
    let (status, invalid) = apply(&server, &owner, &json!({"kind": "Deployment"}), false).await;
    assert_eq!(status, 400, "{invalid}");
    let (status, missing) = apply(&server, &owner, &deployment("ws-nobody", "ide", 1), false).await;
    assert_eq!(status, 404, "{missing}");

    // Delete: the Deployment and what it owns.
    assert_eq!(server.call_as(&owner, reqwest::Method::DELETE, &read, None).await.0, 204);
    assert!(fake.objects("apps/v1", "Deployment", Some("ws-ada")).is_empty());
    assert_eq!(server.call_as(&owner, reqwest::Method::DELETE, &read, None).await.0, 404);

    // /metrics counts the calls by verb and outcome.
    let metrics = server.text("/metrics").await;
    for line in [
        r#"devpulse_kube_calls_total{outcome="ok",plugin="kube-probe",verb="apply"}"#,
        r#"devpulse_kube_calls_total{outcome="denied",plugin="kube-probe",verb="apply"} 5"#,
        r#"devpulse_kube_calls_total{outcome="conflict",plugin="kube-probe",verb="apply"} 1"#,
        r#"devpulse_kube_calls_total{outcome="ok",plugin="kube-probe",verb="delete"} 3"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    server.stop().await;
}

#[tokio::test]
async fn without_a_cluster_or_a_grant_the_capability_says_why() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // No [kube]: unavailable, naming the setting.
    let config = "[plugins.kube-probe]\ngrants = [\"kube\"]\n\n[plugins.kube-probe.kube]\nnamespaces = [\"ws-*\"]\nkinds = [\"Namespace\"]\n";
    let server = TestServer::start_with(Backend::Sqlite, Options { config: config.into(), ..Options::default() })
        .await
        .expect("a server");
    install_probe(&server).await;
    let (status, problem) = apply(&server, &server.token, &namespace("ws-ada"), false).await;
    assert_eq!(status, 503, "{problem}");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("[kube]")), "{problem}");
    server.stop().await;

    // A cluster, but no grant: denied.
    let fake = FakeKube::start("127.0.0.1:0", Config::default()).await.expect("the fake starts");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig("default")).expect("kubeconfig written");
    let config = format!("[kube]\nkubeconfig = {:?}\n", kubeconfig.display().to_string());
    let server =
        TestServer::start_with(Backend::Sqlite, Options { config, ..Options::default() }).await.expect("a server");
    let plugin = install_probe(&server).await;
    assert_eq!(plugin["capabilities_requested"], json!(["kube"]));
    assert_eq!(plugin["capabilities_granted"], json!([]));
    let (status, problem) = apply(&server, &server.token, &namespace("ws-ada"), false).await;
    assert_eq!(status, 403, "{problem}");
    assert!(fake.objects("v1", "Namespace", None).iter().all(|n| n["metadata"]["name"] != "ws-ada"));
    server.stop().await;
}
