//! The PKI: a root certificate authority kept in the store (a Secret in `kube-system`, so
//! replicas on one store share it), the API server's certificate and the admin's client
//! certificate issued from it, and their exports under `DATA/pki/` with `DATA/kubeconfig`.

use std::path::Path;

use base64::Engine;
pub use pki::{Authority as Root, Issued};
use registry::{ApiError, Registry, WriteOptions};
use serde_json::json;

use crate::native;

/// The Secret in `kube-system` that holds the root certificate authority.
pub const ROOT_SECRET: &str = "adamant-root-ca";

/// The user of the admin kubeconfig.
pub const ADMIN_USER: &str = "adamant-admin";

/// What can go wrong with the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A certificate could not be made.
    #[error(transparent)]
    Certificate(#[from] pki::Error),
    /// The store refused or failed.
    #[error("the root certificate authority could not be stored or read: {0}")]
    Store(#[from] ApiError),
    /// The stored root is damaged.
    #[error(
        "the stored root certificate authority (Secret kube-system/{ROOT_SECRET}) is damaged: {0}; delete it to make a new one (every issued certificate then changes)"
    )]
    Damaged(String),
    /// An export could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn unb64(value: &serde_json::Value) -> Result<String, PkiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or(""))
        .map_err(|e| PkiError::Damaged(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| PkiError::Damaged(e.to_string()))
}

/// The root in the store, made and stored first if there is none. Concurrent first starts
/// agree on one root: the store's create-if-absent decides.
pub async fn load_or_create(registry: &Registry) -> Result<Root, PkiError> {
    let secrets = native::secret_resource();
    loop {
        match registry.get(&secrets, "kube-system", ROOT_SECRET).await {
            Ok(secret) => {
                let certificate_pem = unb64(&secret["data"]["tls.crt"])?;
                let key_pem = unb64(&secret["data"]["tls.key"])?;
                return Root::from_pem(&certificate_pem, &key_pem)
                    .map_err(|e| PkiError::Damaged(e.to_string()));
            }
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let root = Root::generate("adamant-root-ca")?;
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": ROOT_SECRET, "namespace": "kube-system"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": b64(&root.certificate_pem), "tls.key": b64(&root.key_pem())},
        });
        match registry
            .create(&secrets, "kube-system", secret, &WriteOptions::default())
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let error = |source| PkiError::Write {
        path: path.display().to_string(),
        source,
    };
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    // Private files are 0600 from their creation, never readable by others for a moment.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if private { 0o600 } else { 0o644 });
    let _ = private;
    let mut file = options.open(&temporary).map_err(error)?;
    std::io::Write::write_all(&mut file, contents.as_bytes()).map_err(error)?;
    file.sync_all().map_err(error)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(error)
}

/// Creates `dir` (and its parents) if missing, and makes it readable by its owner only (0700).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `DATA/pki/` (root certificate, server and admin certificates and keys) and the
/// admin's `DATA/kubeconfig` for `server_url`.
pub fn export(
    data_dir: &Path,
    root: &Root,
    server: &Issued,
    admin: &Issued,
    server_url: &str,
) -> Result<(), PkiError> {
    let pki = data_dir.join("pki");
    private_dir(&pki).map_err(|source| PkiError::Write {
        path: pki.display().to_string(),
        source,
    })?;
    write(
        &pki.join("root-certificate.pem"),
        &root.certificate_pem,
        false,
    )?;
    write(&pki.join("apiserver.crt"), &server.certificate_pem, false)?;
    write(&pki.join("apiserver.key"), &server.key_pem, true)?;
    write(&pki.join("admin.crt"), &admin.certificate_pem, false)?;
    write(&pki.join("admin.key"), &admin.key_pem, true)?;
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: adamant\n  cluster:\n    server: {server_url}\n    certificate-authority-data: {ca}\nusers:\n- name: {ADMIN_USER}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\ncontexts:\n- name: adamant\n  context:\n    cluster: adamant\n    user: {ADMIN_USER}\n    namespace: default\ncurrent-context: adamant\n",
        ca = b64(&root.certificate_pem),
        cert = b64(&admin.certificate_pem),
        key = b64(&admin.key_pem),
    );
    write(&data_dir.join("kubeconfig"), &kubeconfig, true)
}
