//! `kubectl eve`: the kubectl plugin (this binary, installed or linked as `kubectl-eve` on the
//! `PATH`) that reads a device's telemetry as `kubectl logs` reads a pod's:
//! `kubectl eve logs|info|metrics DEVICE` and `kubectl eve logs application/NAME`, through the
//! API server's `/edgenode/namespaces/NS/devices/NAME/...` endpoints (`docs/telemetry.md`), with
//! the user's kubeconfig and credentials; in cluster mode, through the controller's telemetry
//! service (`--telemetry-url`) with the kubeconfig's bearer token.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use clap::{Parser, Subcommand};
use http_body_util::BodyExt;

/// Reads EVE devices' telemetry.
#[derive(Debug, Parser)]
#[command(name = "kubectl eve", version)]
pub struct EveCli {
    /// What to read.
    #[command(subcommand)]
    pub command: EveCommand,
}

/// The `kubectl eve` subcommands.
#[derive(Debug, Subcommand)]
pub enum EveCommand {
    /// A device's log (`DEVICE` or `device/NAME`), or an application's (`application/NAME`).
    Logs(ReadArgs),
    /// A device's info messages.
    Info(ReadArgs),
    /// A device's metrics messages.
    Metrics(ReadArgs),
}

/// What to read and how.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// The device (`NAME` or `device/NAME`), or for logs `application/NAME`.
    pub target: String,
    /// The namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Go on printing what arrives.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only what is newer than this: RFC 3339, or a duration before now (`10m`, `1h`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only what is older than this, same forms.
    #[arg(long)]
    pub until: Option<String>,
    /// Log entries of this severity or above (`debug`, `info`, `warning`, `error`...).
    #[arg(long)]
    pub severity: Option<String>,
    /// Only the last N records.
    #[arg(long)]
    pub tail: Option<usize>,
    /// `json`: the records as the server sends them, one a line.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// The kubeconfig (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Read telemetry from here instead of the API server: cluster mode's telemetry service
    /// (`adamant controller --telemetry-listen`), e.g. `https://localhost:8444` through a
    /// port-forward. The kubeconfig's bearer token goes with each request (client certificates
    /// are not accepted there: `kubectl create token` makes a token).
    #[arg(long, env = "KUBECTL_EVE_TELEMETRY_URL")]
    pub telemetry_url: Option<String>,
    /// The certificate authority (PEM) of `--telemetry-url`: the device root, `tls.crt` of the
    /// Secret `kube-system/adamant-root-ca`.
    #[arg(long, env = "KUBECTL_EVE_TELEMETRY_CA", requires = "telemetry_url")]
    pub telemetry_ca: Option<std::path::PathBuf>,
}

/// A client of the telemetry service at `url` with `config`'s credentials, trusting `ca`.
fn telemetry_client(
    config: &kube::Config,
    url: &str,
    ca: Option<&std::path::Path>,
) -> anyhow::Result<kube::Client> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut config = config.clone();
    config.cluster_url = url
        .parse()
        .with_context(|| format!("--telemetry-url {url:?} is not a URL"))?;
    anyhow::ensure!(
        url.starts_with("https://"),
        "--telemetry-url must be https://HOST:PORT (the telemetry service serves TLS only)"
    );
    if let Some(path) = ca {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the CA {}", path.display()))?;
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
        anyhow::ensure!(
            !certificates.is_empty(),
            "{} holds no PEM certificate",
            path.display()
        );
        config.root_cert = Some(certificates);
    }
    kube::Client::try_from(config).context("cannot make a client of the telemetry service")
}

/// Whether this process was started as the plugin (`kubectl-eve`).
pub fn invoked_as_plugin() -> bool {
    std::env::args_os()
        .next()
        .and_then(|arg| {
            std::path::Path::new(&arg)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .is_some_and(|name| name == "kubectl-eve")
}

/// Runs `kubectl eve`.
pub fn run(cli: EveCli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(read(cli))
}

fn query(args: &ReadArgs) -> String {
    let mut pairs = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("since", args.since.clone()),
        ("until", args.until.clone()),
        ("severity", args.severity.clone()),
        ("tail", args.tail.map(|t| t.to_string())),
    ] {
        if let Some(value) = value {
            pairs.append_pair(key, &value);
        }
    }
    if args.follow {
        pairs.append_pair("follow", "true");
    }
    pairs.finish()
}

async fn read(cli: EveCli) -> anyhow::Result<()> {
    let (kind, args) = match &cli.command {
        EveCommand::Logs(args) => ("log", args),
        EveCommand::Info(args) => ("info", args),
        EveCommand::Metrics(args) => ("metrics", args),
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig: set KUBECONFIG or pass --kubeconfig")?,
    };
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let telemetry = match &args.telemetry_url {
        Some(url) => Some(telemetry_client(
            &config,
            url,
            args.telemetry_ca.as_deref(),
        )?),
        None => None,
    };
    let client = kube::Client::try_from(config).context("cannot make a Kubernetes client")?;
    let device_path = |device: &str| format!("/edgenode/namespaces/{namespace}/devices/{device}");
    let path = match args.target.split_once('/') {
        Some(("application" | "applications" | "app", app)) => {
            anyhow::ensure!(
                kind == "log",
                "an application has logs only: kubectl eve logs application/{app}"
            );
            let api: kube::Api<eve_model::Application> =
                kube::Api::namespaced(client.clone(), &namespace);
            let application = api
                .get(app)
                .await
                .with_context(|| format!("cannot read the application {app} in {namespace}"))?;
            let device = application.spec.node_name.clone().with_context(|| {
                format!("the application {app} is not on a device yet (no spec.nodeName)")
            })?;
            format!("{}/apps/{app}/log", device_path(&device))
        }
        Some(("device" | "devices", device)) => format!("{}/{kind}", device_path(device)),
        Some((other, _)) => anyhow::bail!(
            "{other:?} is not something with telemetry: name a device (NAME or device/NAME) or application/NAME"
        ),
        None => format!("{}/{kind}", device_path(&args.target)),
    };
    let query = query(args);
    let uri = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let request = http::Request::get(&uri).body(kube::client::Body::empty())?;
    let response = telemetry
        .as_ref()
        .unwrap_or(&client)
        .send(request)
        .await
        .context(match &args.telemetry_url {
            Some(url) => format!("cannot reach the telemetry service {url}"),
            None => "cannot reach the API server".to_string(),
        })?;
    let status = response.status();
    let mut body = response.into_body();
    if !status.is_success() {
        let bytes = body.collect().await?.to_bytes();
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|s| s["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        anyhow::bail!("{message}");
    }
    let json = args.output.as_deref() == Some("json");
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut stdout = std::io::stdout().lock();
    // Bytes until a whole line has come: a character may be split between two frames.
    let mut pending: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("the stream broke off")?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let bytes: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&bytes);
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            let text = if json {
                line.to_string()
            } else {
                render(kind, line, colour)
            };
            if writeln!(stdout, "{text}").is_err() {
                return Ok(());
            }
            let _ = stdout.flush();
        }
    }
    Ok(())
}

/// A record as a person reads it: logs as `TIME SEVERITY SOURCE CONTENT` (the severity
/// coloured on a terminal), others as `TIME` and the message's JSON.
fn render(kind: &str, line: &str, colour: bool) -> String {
    let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
        return line.to_string();
    };
    let text = |key: &str| record[key].as_str().unwrap_or("").to_string();
    if record.get("fellBehind").is_some() {
        return format!(
            "... some records were dropped by retention before they could be read; resuming at {}",
            text("resumedAt")
        );
    }
    if kind != "log" {
        let mut rest = record.clone();
        if let Some(map) = rest.as_object_mut() {
            map.remove("id");
            map.remove("time");
        }
        return format!("{}  {rest}", text("time"));
    }
    let severity = text("severity");
    let padded = format!("{severity:<7}");
    let shown = match (colour, severity.to_ascii_lowercase().as_str()) {
        (false, _) => padded,
        (true, "error" | "err" | "fatal" | "panic" | "critical" | "crit") => {
            format!("\x1b[31m{padded}\x1b[0m")
        }
        (true, "warning" | "warn") => format!("\x1b[33m{padded}\x1b[0m"),
        (true, "debug" | "trace") => format!("\x1b[2m{padded}\x1b[0m"),
        (true, _) => padded,
    };
    format!(
        "{:<30}  {shown}  {:<16}  {}",
        text("time"),
        text("source"),
        text("content")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_records_print_aligned_with_their_severity_coloured_on_a_terminal() {
        let line = r#"{"id":"1-0","time":"2026-11-30T10:00:00Z","severity":"error","source":"zedagent","content":"disk failing"}"#;
        assert_eq!(
            render("log", line, false),
            "2026-11-30T10:00:00Z            error    zedagent          disk failing"
        );
        assert!(render("log", line, true).contains("\x1b[31merror  \x1b[0m"));
        let info = r#"{"id":"1-0","time":"2026-11-30T10:00:00Z","info":{"devId":"d"}}"#;
        assert_eq!(
            render("info", info, false),
            r#"2026-11-30T10:00:00Z  {"info":{"devId":"d"}}"#
        );
        assert!(
            render("log", r#"{"fellBehind":true,"resumedAt":"5-0"}"#, false)
                .contains("resuming at 5-0")
        );
    }
}
