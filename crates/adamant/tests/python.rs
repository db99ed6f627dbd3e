//! The official Kubernetes Python client (`pip install kubernetes`, which `scripts/test`
//! installs) against `adamant serve`: list, create, watch, and its dynamic client on a
//! CRD-defined kind.

use crate::common;

use common::{Server, WIDGET_CRD};

#[test]
fn the_python_client_lists_creates_watches_and_uses_the_dynamic_client() {
    let server = Server::start();
    server.ok_stdin(&["apply", "-f", "-"], WIDGET_CRD);
    server.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=10s",
    ]);
    server.python("client.py");
}
