//! `rbac-bench`: what RBAC costs a request. One `adamant serve` holds 100 ClusterRoles and
//! 1,000 RoleBindings (50 namespaces of 20, to 200 users and 20 groups); the same requests
//! (get, list, create) are made by a user those bindings authorize (a client certificate made
//! here from the server's root CA) and by the admin (`system:masters`, which RBAC does not
//! look up), in the same run; plus the refusals of the user. Prints the Markdown of
//! `docs/benchmarks.md`.

use std::path::{Path, PathBuf};

use api_bench::{Figures, Server, measure, ms, namespace};
use clap::Parser;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, RoleBinding, RoleRef, Subject};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

#[derive(Debug, Parser)]
#[command(about = "Benchmarks the cost of RBAC on requests")]
struct Args {
    /// The `adamant` binary (by default, next to this one).
    #[arg(long)]
    adamant: Option<PathBuf>,
    /// Requests per measurement (split over the clients).
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
}

const NAMESPACES: usize = 50;
const BINDINGS_PER_NAMESPACE: usize = 20;
const CLUSTER_ROLES: usize = 100;

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}

/// 100 ClusterRoles of a few rules each; `bench-0` lets its holders read and write ConfigMaps.
async fn cluster_roles(admin: &Client) -> anyhow::Result<()> {
    let api: Api<ClusterRole> = Api::all(admin.clone());
    for i in 0..CLUSTER_ROLES {
        let mut rules = vec![
            rule(
                &["get", "list", "watch"],
                "eve.lfedge.org",
                &["devices", "images"],
            ),
            rule(&["get"], "", &["persistentvolumeclaims"]),
            rule(
                &["get", "list"],
                "coordination.k8s.io",
                &[&format!("leases-{i}")],
            ),
        ];
        if i == 0 {
            rules.push(rule(&["get", "list", "create"], "", &["configmaps"]));
        }
        let role = ClusterRole {
            metadata: meta(&format!("bench-{i}")),
            rules: Some(rules),
            ..Default::default()
        };
        api.create(&PostParams::default(), &role).await?;
    }
    Ok(())
}

/// 1,000 RoleBindings: in each namespace, 20 bindings to ClusterRoles, each to users and a
/// group; the measured user is bound (directly and through its group) in every namespace.
async fn role_bindings(admin: &Client) -> anyhow::Result<()> {
    for n in 0..NAMESPACES {
        let ns = format!("bench-{n}");
        namespace(admin, &ns).await?;
        let api: Api<RoleBinding> = Api::namespaced(admin.clone(), &ns);
        for b in 0..BINDINGS_PER_NAMESPACE {
            let user = |name: String| Subject {
                kind: "User".into(),
                name,
                api_group: Some("rbac.authorization.k8s.io".into()),
                ..Default::default()
            };
            let mut subjects = vec![
                user(format!("user-{}", (n * BINDINGS_PER_NAMESPACE + b) % 200)),
                Subject {
                    kind: "Group".into(),
                    name: format!("group-{}", b % 20),
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    ..Default::default()
                },
            ];
            if b == 0 {
                subjects.push(user("bench-user".into()));
            }
            let binding = RoleBinding {
                metadata: meta(&format!("binding-{b}")),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: format!("bench-{}", (n * BINDINGS_PER_NAMESPACE + b) % CLUSTER_ROLES),
                },
                subjects: Some(subjects),
            };
            api.create(&PostParams::default(), &binding).await?;
        }
    }
    Ok(())
}

/// A kubeconfig (in `dir`) of `user` in `groups`, from `adamant kubeconfig` on the server's
/// data directory.
fn user_kubeconfig(
    binary: &Path,
    data_dir: &Path,
    dir: &Path,
    user: &str,
    groups: &[&str],
) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{user}.kubeconfig"));
    let mut command = std::process::Command::new(binary);
    command.arg("kubeconfig").arg("--data-dir").arg(data_dir);
    command.args(["--user", user]).arg("-o").arg(&path);
    for group in groups {
        command.args(["--group", group]);
    }
    let output = command.output()?;
    anyhow::ensure!(
        output.status.success(),
        "adamant kubeconfig failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(path)
}

/// A client of a kubeconfig (one connection per client).
async fn client(kubeconfig: &Path) -> anyhow::Result<Client> {
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    Ok(Client::try_from(config)?)
}

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: meta(name),
        data: Some([("value".to_string(), "x".repeat(100))].into()),
        ..Default::default()
    }
}

/// The requests measured.
#[derive(Clone, Copy)]
enum Op {
    Get,
    List,
    Create,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::List => "list (limit 10)",
            Op::Create => "create",
        }
    }
}

/// `requests` of `op` on ConfigMaps in `bench-0` by `clients`; created names start with `tag`.
async fn run(op: Op, clients: &[Client], tag: &str, requests: usize) -> anyhow::Result<Figures> {
    let apis: Vec<Api<ConfigMap>> = clients
        .iter()
        .map(|c| Api::namespaced(c.clone(), "bench-0"))
        .collect();
    let tag = tag.to_string();
    measure(&apis, requests, move |api, i| {
        let name = format!("{tag}-{i}");
        async move {
            match op {
                Op::Get => drop(api.get("probe").await?),
                Op::List => drop(api.list(&ListParams::default().limit(10)).await?),
                Op::Create => drop(
                    api.create(&PostParams::default(), &config_map(&name))
                        .await?,
                ),
            }
            Ok(())
        }
    })
    .await
}

/// The run of median rate.
fn median(mut runs: Vec<Figures>) -> Figures {
    runs.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    runs.swap_remove(runs.len() / 2)
}

/// Rounds per identity and request, alternating admin and user.
const ROUNDS: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let binary = api_bench::adamant_binary(args.adamant.clone())?;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "# rbac-bench\n\n{cpus} CPUs; {} clients; {} requests per row\n",
        args.clients, args.requests
    );
    let server = Server::start(&binary, &[])?;
    let admin = server.client().await?;
    cluster_roles(&admin).await?;
    role_bindings(&admin).await?;
    let probe: Api<ConfigMap> = Api::namespaced(admin.clone(), "bench-0");
    probe
        .create(&PostParams::default(), &config_map("probe"))
        .await?;
    for i in 0..100 {
        let filler = config_map(&format!("filler-{i}"));
        probe.create(&PostParams::default(), &filler).await?;
    }
    let dir = tempfile::tempdir()?;
    let groups = ["group-3", "group-7"];
    let kubeconfig = user_kubeconfig(
        &binary,
        server.data_dir(),
        dir.path(),
        "bench-user",
        &groups,
    )?;
    let mut users = Vec::new();
    let mut admins = Vec::new();
    for _ in 0..args.clients {
        users.push(client(&kubeconfig).await?);
        admins.push(server.client().await?);
    }
    println!(
        "{CLUSTER_ROLES} ClusterRoles, {} RoleBindings in {NAMESPACES} namespaces (the user is bound in each, directly and through two of its groups).\n",
        NAMESPACES * BINDINGS_PER_NAMESPACE
    );
    println!("| request | identity | per second | p50 ms | p99 ms |\n|---|---|---|---|---|");
    // Alternating, so that neither identity always runs on a warmer (or fuller) server.
    let mut ratios = Vec::new();
    for op in [Op::Get, Op::List, Op::Create] {
        let (mut admin_runs, mut user_runs) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            admin_runs.push(run(op, &admins, &format!("admin-{round}"), args.requests).await?);
            user_runs.push(run(op, &users, &format!("user-{round}"), args.requests).await?);
        }
        let (admin, user) = (median(admin_runs), median(user_runs));
        for (who, f) in [("system:masters", &admin), ("RBAC user", &user)] {
            println!(
                "| {} | {who} | {:.0} | {} | {} |",
                op.name(),
                f.per_second,
                ms(f.p50),
                ms(f.p99)
            );
        }
        ratios.push((op.name(), user.per_second / admin.per_second));
    }
    let apis: Vec<Api<Secret>> = users
        .iter()
        .map(|c| Api::namespaced(c.clone(), "bench-0"))
        .collect();
    let refused = measure(&apis, args.requests, |api, _| async move {
        match api.get("nothing").await {
            Err(kube::Error::Api(e)) if e.code == 403 => Ok(()),
            other => anyhow::bail!("expected 403, got {other:?}"),
        }
    })
    .await?;
    println!(
        "| get (refused, 403) | RBAC user | {:.0} | {} | {} |",
        refused.per_second,
        ms(refused.p50),
        ms(refused.p99)
    );
    println!();
    for (name, ratio) in ratios {
        println!(
            "- {name}: the RBAC user at {ratio:.2}× the admin's rate (medians of {ROUNDS} runs)."
        );
    }
    Ok(())
}
