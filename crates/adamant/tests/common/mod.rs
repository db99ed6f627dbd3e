//! Running `adamant serve` and real clients against it in tests.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A running `adamant serve` on a temporary data directory.
pub struct Server {
    child: Option<Child>,
    /// The data directory.
    pub data: PathBuf,
    /// The API's address (`127.0.0.1:PORT`).
    pub address: String,
    /// The server's "ready" log line.
    pub ready: String,
    /// A fresh `HOME` for clients (kubectl caches discovery there).
    pub home: tempfile::TempDir,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on a new data directory, on a free port.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut server = Server::start_in(&data, "127.0.0.1:0", &[]);
        server._dir = Some(dir);
        server
    }

    /// Starts a server on `data`, listening on `listen`, with more arguments.
    pub fn start_in(data: &Path, listen: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_adamant"))
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data)
            .args(if extra.iter().any(|a| a.starts_with("--device-addr")) {
                &[][..]
            } else {
                &["--device-addr", "127.0.0.1:0"][..]
            })
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("run adamant");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|line| line.contains("adamant is ready"))
            .expect("adamant serve never became ready");
        // Keep the server's log next to its data, for when a test fails.
        let log_path = data.with_extension("log");
        std::thread::spawn(move || {
            use std::io::Write;
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_path)
                .ok();
            for line in lines.map_while(Result::ok) {
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
            }
        });
        let address = ready
            .split("api=https://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the ready line names the API address")
            .to_string();
        Server {
            child: Some(child),
            data: data.to_path_buf(),
            address,
            ready,
            home: tempfile::tempdir().unwrap(),
            _dir: None,
        }
    }

    /// The device API's address, from the ready line (`HOST:PORT`).
    pub fn device_address(&self) -> String {
        device_address_in(&self.ready)
    }

    /// A simulated-device controller for this server's device API (its root certificate
    /// trusted, the name `localhost`).
    pub fn device_controller(&self) -> device_sim::Controller {
        let root = std::fs::read(self.data.join("pki/root-certificate.pem")).unwrap();
        device_sim::Controller::new(self.device_address().parse().unwrap(), "localhost", &root)
            .unwrap()
    }

    /// A simulated `eve-device.lab1`, the examples' Device: its certificate and key, the
    /// examples' onboarding certificate, its serial number.
    pub fn example_device(&self) -> device_sim::Device {
        device_sim::Device::new(
            self.device_controller(),
            example_identity("device"),
            Some(example_identity("onboard")),
            "6654abbcc44",
        )
        .unwrap()
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data.join("kubeconfig")
    }

    /// Kills the server with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Stops the server with SIGTERM, expecting a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            assert!(
                Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
            let exit = child.wait().unwrap();
            assert!(exit.success(), "adamant serve exited with {exit}");
        }
    }

    /// Takes the data directory's ownership (to restart on it).
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self._dir.take()
    }

    /// A kubectl command with this server's kubeconfig and a fresh HOME.
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        self.kubectl_program(Path::new("kubectl"), args)
    }

    /// Runs `tests/python/SCRIPT` (the official Python client) against this server with the
    /// admin kubeconfig; fails the test with its output if it fails.
    pub fn python(&self, script: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python")
            .join(script);
        let output = Command::new("python3")
            .arg(path)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.home.path())
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "the Python client failed ({script}):\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// kubectl with a bearer token and no kubeconfig (the server's URL and root certificate).
    pub fn with_token(&self, token: &str, args: &[&str]) -> Output {
        self.with_token_stdin(token, args, "")
    }

    /// [`Server::with_token`] with `stdin`.
    pub fn with_token_stdin(&self, token: &str, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let ca = self
            .data
            .join("pki/root-certificate.pem")
            .display()
            .to_string();
        let url = format!("https://{}", self.address);
        let mut child = Command::new("kubectl")
            .args([
                "--server",
                &url,
                "--certificate-authority",
                &ca,
                "--token",
                token,
            ])
            .args(args)
            .env("HOME", self.home.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    }

    /// A command of a particular kubectl binary with this server's kubeconfig and a fresh HOME.
    pub fn kubectl_program(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.home.path())
            .env_remove("KUBECACHEDIR");
        command
    }

    /// Runs kubectl.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_command(args).output().expect("kubectl runs")
    }

    /// Runs kubectl with `stdin`.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .kubectl_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    }

    /// Runs kubectl, expecting success; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.kubectl(args))
    }

    /// Runs kubectl with `stdin`, expecting success; returns stdout.
    #[track_caller]
    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        succeeded(args, self.kubectl_stdin(args, stdin))
    }

    /// Runs kubectl, expecting success; returns stdout and stderr (to check for warnings).
    #[track_caller]
    pub fn ok_with_stderr(&self, args: &[&str]) -> (String, String) {
        let output = self.kubectl(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (succeeded(args, output), stderr)
    }

    /// Runs kubectl (with optional stdin), expecting failure; returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = match stdin {
            Some(stdin) => self.kubectl_stdin(args, stdin),
            None => self.kubectl(args),
        };
        assert!(
            !output.status.success(),
            "kubectl {} succeeded but should fail:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stderr).unwrap()
    }
}

#[track_caller]
fn succeeded(args: &[&str], output: Output) -> String {
    assert!(
        output.status.success(),
        "kubectl {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The Widget CRD the tests use: a status and a scale subresource, printer columns, a default,
/// an enum, a minimum, int-or-string, a short name, a category and selectable fields.
pub const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [gadgets]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    selectableFields:
    - jsonPath: .spec.color
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color, priority: 1}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        description: A widget, for tests.
        properties:
          spec:
            type: object
            description: What the widget should be.
            required: [size]
            properties:
              size: {type: integer, minimum: 1, description: How big the widget is.}
              color: {type: string, enum: [red, green], default: red, description: Its color.}
              replicas: {type: integer, description: How many.}
              port: {x-kubernetes-int-or-string: true, description: A port, by number or name.}
          status:
            type: object
            properties:
              replicas: {type: integer}
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
"#;

/// A Widget manifest.
pub fn widget(name: &str, size: i64) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\n  labels: {{app: demo}}\nspec:\n  size: {size}\n"
    )
}

/// The value of the sample named exactly `series` (name and labels) in Prometheus text, if any.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split(' ').next()?.parse().ok()
    })
}

/// Polls `check` every 50 ms for up to 30 s; panics with `what` if it never holds.
pub fn eventually<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    eventually_within(what, std::time::Duration::from_secs(30), check)
}

/// [`eventually`] with a deadline of `patience`.
pub fn eventually_within<T>(
    what: &str,
    patience: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + patience;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A running `adamant controller` (killed on drop), as the ServiceAccount `adamant crds`
/// prints for it, bound only to the roles printed with it: least privilege. Its log (with the
/// EVE crates at debug, where watch and event failures are) is kept; a controller that was
/// refused anything fails the test when dropped.
pub struct Controller {
    child: Child,
    dir: tempfile::TempDir,
    /// Whether a refusal in the log fails the test on drop.
    pub check_refusals: bool,
}

/// The ServiceAccount, its namespace and the rules' names `adamant crds` prints.
pub const CONTROLLER_NAMESPACE: &str = "adamant-system";
/// The controller's ServiceAccount.
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "adamant-controller";
/// The controller's user name as its token authenticates.
pub const CONTROLLER_USER: &str = "system:serviceaccount:adamant-system:adamant-controller";

/// Runs kubectl with `kubeconfig` and a fresh HOME under `home`, with optional stdin; returns
/// its output.
pub fn kubectl_as(kubeconfig: &Path, home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .env_remove("KUBECACHEDIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(stdin) = stdin {
        let _ = input.write_all(stdin.as_bytes());
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// `adamant crds`' output.
pub fn crds_yaml() -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_adamant"))
        .arg("crds")
        .output()
        .expect("run adamant crds");
    assert!(output.status.success(), "adamant crds failed");
    String::from_utf8(output.stdout).unwrap()
}

/// Applies `adamant crds` as the admin of `admin` (a kubeconfig), then writes into `dir` a
/// kubeconfig for the same server (its URL and CA from `admin`) with a two-hour token of the
/// controller's ServiceAccount (`kubectl create token`); returns its path.
pub fn controller_kubeconfig(admin: &Path, dir: &Path) -> PathBuf {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let run =
        |args: &[&str], stdin: Option<&str>| succeeded(args, kubectl_as(admin, &home, args, stdin));
    run(&["apply", "-f", "-"], Some(&crds_yaml()));
    let token = run(
        &[
            "create",
            "token",
            CONTROLLER_SERVICE_ACCOUNT,
            "-n",
            CONTROLLER_NAMESPACE,
            "--duration",
            "2h",
        ],
        None,
    );
    let view = |path: &str| {
        run(
            &[
                "config",
                "view",
                "--raw",
                "--minify",
                "-o",
                &format!("jsonpath={{.clusters[0].cluster.{path}}}"),
            ],
            None,
        )
    };
    let (server, ca) = (view("server"), view("certificate-authority-data"));
    assert!(
        !server.is_empty() && !ca.is_empty(),
        "the admin kubeconfig names a server and its CA"
    );
    let path = dir.join("controller.kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: cluster\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {CONTROLLER_SERVICE_ACCOUNT}\n  user:\n    token: {}\ncontexts:\n- name: controller\n  context:\n    cluster: cluster\n    user: {CONTROLLER_SERVICE_ACCOUNT}\n    namespace: {CONTROLLER_NAMESPACE}\ncurrent-context: controller\n",
            token.trim()
        ),
    )
    .unwrap();
    path
}

/// A kube-rs client of a kubeconfig.
pub async fn kube_client(kubeconfig: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

impl Controller {
    /// The controller's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `adamant controller` against the server of `kubeconfig` (its admin's).
    pub fn start(kubeconfig: &Path) -> Controller {
        Controller::start_with(kubeconfig, &[]).0
    }

    /// Starts `adamant controller` with more arguments; returns it and its ready line. It runs
    /// with the controller's ServiceAccount token ([`controller_kubeconfig`]), not as `admin`.
    pub fn start_with(kubeconfig: &Path, extra: &[&std::ffi::OsStr]) -> (Controller, String) {
        let dir = tempfile::tempdir().unwrap();
        let token = controller_kubeconfig(kubeconfig, dir.path());
        let (child, ready) = Controller::spawn(&token, dir.path(), extra)
            .unwrap_or_else(|log| panic!("adamant controller never became ready:\n{log}"));
        (
            Controller {
                child,
                dir,
                check_refusals: true,
            },
            ready,
        )
    }

    /// Runs `adamant controller --kubeconfig KUBECONFIG EXTRA`, its log in `dir/controller.log`;
    /// returns it and its ready line, or its log if it exited first or was not ready within a
    /// minute.
    pub fn spawn(
        kubeconfig: &Path,
        dir: &Path,
        extra: &[&std::ffi::OsStr],
    ) -> Result<(Child, String), String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_adamant"))
            .arg("controller")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(extra)
            .env("RUST_LOG", "info,eve_controllers=debug,device_api=debug")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("run adamant controller");
        let stderr = child.stderr.take().unwrap();
        let log_path = dir.join("controller.log");
        let mut log = std::fs::File::create(&log_path).unwrap();
        // Every line goes to the log; the ready line also comes here. A controller that is
        // refused what it needs to start may wait for ever: it gets a minute.
        let (tell, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Write;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                if line.contains("adamant controller is ready") {
                    let _ = tell.send(line);
                }
            }
        });
        let Ok(ready) = ready.recv_timeout(std::time::Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
        };
        Ok((child, ready))
    }

    /// The kubeconfig the controller runs with (its ServiceAccount's token).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("controller.kubeconfig")
    }

    /// The controller's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("controller.log")).unwrap_or_default()
    }
}

/// Whether a log line reports a refusal by the API server's authorizer (kube's message:
/// `... is forbidden: User "NAME" cannot VERB resource ...`).
pub fn is_refusal(line: &str) -> bool {
    line.contains("forbidden: User")
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.check_refusals && !std::thread::panicking() {
            let log = self.log();
            let refused: Vec<&str> = log.lines().filter(|l| is_refusal(l)).collect();
            assert!(
                refused.is_empty(),
                "the controller, bound to its printed roles only, was refused:\n{}",
                refused.join("\n")
            );
        }
    }
}

/// The JSON of `kubectl get ARGS -o json`.
pub fn get_json(server: &Server, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&server.ok(&all)).expect("kubectl prints JSON")
}

/// The repository's examples (`examples/`).
pub fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A file of the examples, as a path argument.
pub fn example(name: &str) -> String {
    examples().join(name).display().to_string()
}

/// The example manifests in the order they apply: `examples/*.yaml`, then `examples/vendor/`.
pub fn example_manifests() -> Vec<String> {
    let mut manifests = Vec::new();
    for dir in ["", "vendor"] {
        let mut files: Vec<String> = std::fs::read_dir(examples().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .map(|n| {
                if dir.is_empty() {
                    n
                } else {
                    format!("{dir}/{n}")
                }
            })
            .collect();
        files.sort();
        manifests.extend(files);
    }
    manifests
}

/// Waits until the vendor example's CustomResourceDefinition is established.
pub fn wait_for_vendor_crd(server: &Server) {
    server.ok(&[
        "wait",
        "--for",
        "condition=established",
        "crd/devicesecurityconfigs.ctrl.edgesmart.tv",
    ]);
}

/// Applies every example as `examples/README.md` says: the directory in one go, then the
/// vendor's kind and an object of it.
pub fn apply_examples(server: &Server) {
    server.ok(&["apply", "-f", &example("")]);
    server.ok(&["apply", "-f", &example("vendor/01-crd.yaml")]);
    wait_for_vendor_crd(server);
    server.ok(&["apply", "-f", &example("vendor/02-object.yaml")]);
}

/// The kubectl binaries of every minor version the machine carries (`kubectl.1.NN` beside the
/// `kubectl` dispatcher), by version (`1.27`): 1.27 to 1.33 must be there.
pub fn kubectl_versions() -> Vec<(String, PathBuf)> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dispatcher = std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
        .expect("kubectl on PATH");
    let dir = dispatcher
        .canonicalize()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let mut versions: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let version = path
                .file_name()?
                .to_str()?
                .strip_prefix("kubectl.")?
                .to_string();
            Some((version, path))
        })
        .collect();
    versions.sort_by_key(|(v, _)| {
        v.split('.')
            .map(|n| n.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    let names: Vec<&str> = versions.iter().map(|(v, _)| v.as_str()).collect();
    for wanted in ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"] {
        assert!(
            names.contains(&wanted),
            "kubectl {wanted} is missing beside {}: the tests need kubectl.1.27 to kubectl.1.33 there (found {names:?})",
            dispatcher.display()
        );
    }
    versions
}

/// The device API's address named in a ready line (`devices=https://HOST:PORT`).
pub fn device_address_in(ready: &str) -> String {
    address_in(ready, "devices")
}

/// Cluster mode's device root, as devices trust it: `tls.crt` of the Secret
/// `kube-system/adamant-root-ca` the controller keeps.
pub fn cluster_root(server: &Server) -> Vec<u8> {
    use base64::Engine;
    let secret = get_json(
        server,
        &["-n", "kube-system", "get", "secret", "adamant-root-ca"],
    );
    base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["tls.crt"].as_str().unwrap())
        .unwrap()
}

/// The address of `field=https://ADDRESS` in a ready line.
pub fn address_in(ready: &str, field: &str) -> String {
    ready
        .split(&format!("{field}=https://"))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the ready line names {field}: {ready}"))
        .to_string()
}

/// A file of the example keys (`examples/keys/NAME`).
pub fn example_key(name: &str) -> Vec<u8> {
    std::fs::read(examples().join("keys").join(name)).unwrap()
}

/// The example identity `NAME` (`NAME.pem` and `NAME.key` of the example keys).
pub fn example_identity(name: &str) -> device_sim::Identity {
    device_sim::Identity {
        certificate_pem: example_key(&format!("{name}.pem")),
        key_pem: example_key(&format!("{name}.key")),
    }
}

/// Waits for `check` to give a value, checking every 50 ms for 30 s (async checks).
pub async fn eventually_async<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for a condition"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// What a test's own HTTPS server on 127.0.0.1 needs: the authority that issued its
/// certificate (clients trust its `certificate_pem`), its TLS configuration (h2 and HTTP/1.1)
/// and a listener on a free port.
pub struct LoopbackTls {
    pub authority: pki::Authority,
    pub tls: std::sync::Arc<rustls::ServerConfig>,
    pub listener: tokio::net::TcpListener,
}

/// A [`LoopbackTls`] for a server named `name`, its listener bound on `runtime`.
pub fn loopback_tls(runtime: &tokio::runtime::Runtime, name: &str) -> LoopbackTls {
    let authority = pki::Authority::generate(&format!("{name}-test-ca")).unwrap();
    let issued = authority
        .issue_server(name, &["127.0.0.1".to_string()])
        .unwrap();
    let tls = https::server_config(
        &issued.certificate_pem,
        &issued.key_pem,
        &[b"h2", b"http/1.1"],
    )
    .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    LoopbackTls {
        authority,
        tls: std::sync::Arc::new(tls),
        listener,
    }
}

/// One poll of `device`'s configuration: `None` when it was told 429 (over its request budget;
/// it waits 200 ms, as EVE asks again later), else the answer (`Ok(None)`: unchanged, 304).
pub fn poll_unless_busy(
    runtime: &tokio::runtime::Runtime,
    device: &mut device_sim::Device,
) -> Option<Result<Option<eve_api::config::EdgeDevConfig>, device_sim::SimError>> {
    match runtime.block_on(device.poll_config()) {
        Ok(config) => Some(Ok(config.cloned())),
        Err(device_sim::SimError::Status {
            status: http::StatusCode::TOO_MANY_REQUESTS,
            ..
        }) => {
            std::thread::sleep(std::time::Duration::from_millis(200));
            None
        }
        Err(e) => Some(Err(e)),
    }
}

/// Polls `device`'s configuration until `found` finds what it looks for in it (the one just
/// fetched, or the last one when it is unchanged); what it found.
pub fn configured<T>(
    runtime: &tokio::runtime::Runtime,
    device: &mut device_sim::Device,
    what: &str,
    mut found: impl FnMut(eve_api::config::EdgeDevConfig) -> Option<T>,
) -> T {
    eventually(what, || {
        let config = match poll_unless_busy(runtime, device) {
            None => None,
            Some(Ok(config)) => config,
            Some(Err(e)) => panic!("{what}: {e}"),
        };
        found(config.or_else(|| device.config.clone())?)
    })
}
