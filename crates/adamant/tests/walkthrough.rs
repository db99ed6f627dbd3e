//! The README's walk-through, run as it is written: its shell block, extracted from README.md,
//! against `adamant serve` on a data directory `./adamant-data` (as the quick start makes it),
//! with the repository's `examples/`, the test's `adamant` on `PATH` and `kubectl` as installed.
//! It must end with the example device Ready and `app-ubuntu` RUNNING, as kubectl prints them.

use crate::common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::{Server, eventually, examples, get_json};

const START: &str = "<!-- walkthrough:";
const END: &str = "<!-- end of walkthrough -->";

/// The shell block between the walk-through's markers in README.md.
fn walkthrough() -> String {
    let readme = std::fs::read_to_string(examples().join("../README.md")).unwrap();
    let start = readme
        .find(START)
        .expect("README.md marks its walk-through");
    let end = readme[start..].find(END).expect("the walk-through ends") + start;
    let block = &readme[start..end];
    let body = block
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the walk-through is a ```sh block")
        .0;
    body.to_string()
}

/// The header lines (`NAME ...`) of the sample output the README shows after the walk-through,
/// as their column names.
fn sample_headers() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(examples().join("../README.md")).unwrap();
    let after = &readme[readme.find(END).expect("the walk-through ends")..];
    let sample = after
        .split_once("```\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a sample output block follows the walk-through")
        .0;
    headers(sample)
}

/// The header lines of kubectl's table output, as their column names.
fn headers(output: &str) -> Vec<Vec<String>> {
    output
        .lines()
        .filter(|l| l.starts_with("NAME "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// A process group ended when dropped (the walk-through leaves `adamant sim` running).
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        // `--` before the negative process group: procps-ng's kill reads `-TERM -PGID` as a
        // signal to every process (kill(-1)).
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &format!("-{}", self.0)])
            .status();
    }
}

#[test]
fn the_readme_walkthrough_ends_with_the_example_device_ready_and_its_application_running() {
    let script = walkthrough();
    assert!(script.contains("kubectl apply -f examples/"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&dir.path().join("adamant-data"), "127.0.0.1:0", &[]);
    std::os::unix::fs::symlink(
        examples().canonicalize().unwrap(),
        dir.path().join("examples"),
    )
    .unwrap();
    let devices = server.device_address();
    // The test's own (debug) adamant comes first on PATH (the script's target/release is absent
    // here), and `adamant sim` reaches the device API on the port this server was given
    // (ADAMANT_DEVICE_API), not the default 8443.
    let adamant = std::path::Path::new(env!("CARGO_BIN_EXE_adamant"));
    let path = format!(
        "{}:{}",
        adamant.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("HOME", server.home.path())
        .env("ADAMANT_DEVICE_API", &devices)
        .env_remove("KUBECONFIG")
        .env_remove("KUBECACHEDIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = Group(child.id());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let log = std::fs::read_to_string(dir.path().join("sim.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "the walk-through failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- sim.log\n{log}"
    );
    // kubectl warns of nothing on the way but the one warning the examples draw on purpose
    // (examples/README.md: the specification's FTP data store).
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("Warning:")).collect();
    assert_eq!(
        warnings,
        [
            "Warning: parameters.type: EVE devices cannot fetch over FTP (their data stores are HTTP(S), SFTP, S3, Azure Blob and container registries); images in this store download only once it is also served over one of those"
        ],
        "kubectl warned during the walk-through:\n{stderr}"
    );

    // What the last command printed (after the waits' "condition met"): the example device
    // Ready, app-ubuntu RUNNING.
    println!("{stdout}");
    let row = |prefix: &str| {
        stdout
            .lines()
            .rev()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} row in\n{stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    // The README's sample output has the columns kubectl printed.
    let printed = headers(&stdout);
    let sample = sample_headers();
    assert_eq!(
        sample.len(),
        2,
        "the README's sample has two tables: {sample:?}"
    );
    assert_eq!(
        printed, sample,
        "the README's sample output after the walk-through no longer matches kubectl's\n{stdout}"
    );
    let device = row("device.eve.lfedge.org/eve-device.lab1");
    assert_eq!(device[2], "True", "READY of eve-device.lab1 in\n{stdout}");
    let app = row("application.eve.lfedge.org/app-ubuntu");
    assert_eq!(
        &app[1..3],
        ["eve-device.lab1", "RUNNING"],
        "app-ubuntu in\n{stdout}"
    );

    // The three other devices onboard too, with the example onboarding certificate.
    eventually("the three simulated devices Ready", || {
        let list = get_json(&server, &["-n", "enterprise1", "get", "devices"]);
        let ready = list["items"]
            .as_array()?
            .iter()
            .filter(|d| {
                d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("sim-"))
            })
            .filter(|d| {
                d["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .count();
        (ready == 3).then_some(())
    });
}
