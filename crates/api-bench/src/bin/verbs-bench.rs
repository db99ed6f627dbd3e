//! `verbs-bench`: what server-side apply costs against a plain create of the same objects, and
//! what an unpaged list of many objects costs the server in memory against the same list read
//! in pages, in one run on one server (a Markdown report for `docs/benchmarks.md`). Each list's
//! memory figure is the server's own peak during it: `VmHWM` is reset before each phase.

use std::path::PathBuf;

use api_bench::{Server, measure, ms, namespace};
use clap::Parser;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};

#[derive(Debug, Parser)]
#[command(about = "Benchmarks server-side apply and streamed lists")]
struct Args {
    /// The `adamant` binary (by default, next to this one).
    #[arg(long)]
    adamant: Option<PathBuf>,
    /// Objects created and applied.
    #[arg(long, default_value_t = 1_000)]
    applied: usize,
    /// Objects in the big list.
    #[arg(long, default_value_t = 100_000)]
    objects: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("bench".to_string(), "yes".to_string())].into()),
            ..Default::default()
        },
        data: Some(
            [
                ("value".to_string(), value.to_string()),
                ("padding".to_string(), "x".repeat(200)),
            ]
            .into(),
        ),
        ..Default::default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let binary = api_bench::adamant_binary(args.adamant.clone())?;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# verbs-bench\n\n{cpus} CPUs; {} clients\n", args.clients);
    let server = Server::start(&binary, &[])?;
    let setup = server.client().await?;
    for ns in ["created", "applied", "big"] {
        namespace(&setup, ns).await?;
    }
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        clients.push(server.client().await?);
    }
    let apis = |ns: &str| -> Vec<Api<ConfigMap>> {
        clients
            .iter()
            .map(|c| Api::namespaced(c.clone(), ns))
            .collect()
    };

    println!(
        "## Server-side apply against create ({} objects)\n",
        args.applied
    );
    println!("| operation | per second | p50 ms | p99 ms |\n|---|---|---|---|");
    let create = measure(&apis("created"), args.applied, |api, i| async move {
        api.create(&PostParams::default(), &config_map(&format!("c{i}"), "one"))
            .await?;
        Ok(())
    })
    .await?;
    let apply = |value: &'static str| {
        move |api: Api<ConfigMap>, i: usize| async move {
            let params = PatchParams::apply("verbs-bench");
            let mut object = config_map(&format!("c{i}"), value);
            object.metadata.namespace = Some("applied".into());
            let mut value = serde_json::to_value(&object)?;
            value["apiVersion"] = "v1".into();
            value["kind"] = "ConfigMap".into();
            api.patch(&format!("c{i}"), &params, &Patch::Apply(value))
                .await?;
            Ok(())
        }
    };
    let applied = measure(&apis("applied"), args.applied, apply("one")).await?;
    let again = measure(&apis("applied"), args.applied, apply("one")).await?;
    let changed = measure(&apis("applied"), args.applied, apply("two")).await?;
    for (name, f) in [
        ("create", &create),
        ("apply (creating)", &applied),
        ("apply (no change: nothing written)", &again),
        ("apply (a value changed)", &changed),
    ] {
        println!(
            "| {name} | {:.0} | {} | {} |",
            f.per_second,
            ms(f.p50),
            ms(f.p99)
        );
    }
    println!(
        "\nApply creating / create: {:.2}× the time per object (rate {:.0} against {:.0} per second).\n",
        create.per_second / applied.per_second,
        applied.per_second,
        create.per_second
    );

    println!(
        "## A list of {} objects: paged against unpaged\n",
        args.objects
    );
    // Each phase's peak is its own: the peak is reset to the resident memory at its start (which
    // holds what the allocator kept from the phases before), then read at its end.
    server.reset_peak()?;
    let (rss_filling, _) = server.memory();
    let started = std::time::Instant::now();
    measure(&apis("big"), args.objects, |api, i| async move {
        api.create(
            &PostParams::default(),
            &config_map(&format!("b{i}"), "payload"),
        )
        .await?;
        Ok(())
    })
    .await?;
    let filling_time = started.elapsed();
    let (_, peak_filling) = server.memory();
    let big: Api<ConfigMap> = Api::namespaced(clients[0].clone(), "big");
    server.reset_peak()?;
    let (rss_paged, _) = server.memory();
    let started = std::time::Instant::now();
    let mut paged = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = big.list(&params).await?;
        paged += page.items.len();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let paged_time = started.elapsed();
    let (_, peak_paged) = server.memory();
    server.reset_peak()?;
    let (rss_whole, _) = server.memory();
    let started = std::time::Instant::now();
    let whole = big.list(&ListParams::default()).await?;
    let whole_time = started.elapsed();
    let (_, peak_whole) = server.memory();
    println!(
        "| phase | objects | ms | server RSS at its start MiB | server peak RSS in it MiB |\n|---|---|---|---|---|"
    );
    println!(
        "| creating them | {} | {} | {rss_filling:.0} | {peak_filling:.0} |",
        args.objects,
        filling_time.as_millis()
    );
    println!(
        "| pages of 500 (as kubectl) | {paged} | {} | {rss_paged:.0} | {peak_paged:.0} |",
        paged_time.as_millis()
    );
    println!(
        "| one unpaged list | {} | {} | {rss_whole:.0} | {peak_whole:.0} |",
        whole.items.len(),
        whole_time.as_millis()
    );
    println!(
        "\nPeak with the unpaged list / peak with pages: {:.2}×.",
        peak_whole / peak_paged
    );
    Ok(())
}
