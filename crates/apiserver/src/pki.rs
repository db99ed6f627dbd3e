//! The PKI of the Kubernetes API: two authorities from the vault (`crate::keys`), the root
//! (which devices trust too, and which issues the API's serving certificate) and the client CA
//! (which issues client certificates and nothing else: only certificates it issued, with the
//! clientAuth usage, authenticate); the serving and admin certificates made anew at every
//! start; their exports under `DATA/pki/` with `DATA/kubeconfig`.

use std::path::Path;

use base64::Engine;
pub use pki::{Authority as Root, Issued};
use pki::{Vault, VaultError, load_or_make, names};

/// The user of the admin kubeconfig.
pub const ADMIN_USER: &str = "adamant-admin";

/// What can go wrong with the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A certificate could not be made.
    #[error(transparent)]
    Certificate(#[from] pki::Error),
    /// The vault refused or failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A stored authority is damaged.
    #[error(
        "the stored certificate authority {0} is damaged ({1}); `adamant keys rotate` makes a new one (see docs/access.md)"
    )]
    Damaged(&'static str, String),
    /// An export could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The API's certificate authorities.
pub struct Authorities {
    /// The root: devices trust it; it issues serving certificates.
    pub root: Root,
    /// The client CA: it issues client certificates.
    pub client_ca: Root,
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn authority(vault: &dyn Vault, name: &'static str) -> Result<Root, PkiError> {
    let pair = load_or_make(vault, name, || {
        let authority = Root::generate(name)?;
        Ok(Issued {
            key_pem: authority.key_pem(),
            certificate_pem: authority.certificate_pem,
        })
    })
    .await?;
    Root::from_pem(&pair.certificate_pem, &pair.key_pem)
        .map_err(|e| PkiError::Damaged(name, e.to_string()))
}

/// The authorities in the vault, made and stored first if there are none. Concurrent first
/// starts agree on them: the vault's create-if-absent decides.
pub async fn load_or_create(vault: &dyn Vault) -> Result<Authorities, PkiError> {
    Ok(Authorities {
        root: authority(vault, names::ROOT).await?,
        client_ca: authority(vault, names::CLIENT_CA).await?,
    })
}

/// A kubeconfig for `server_url` (trusting `ca_pem`) as `user` with the client certificate
/// `client`, in `namespace`.
pub fn kubeconfig(
    server_url: &str,
    ca_pem: &str,
    user: &str,
    client: &Issued,
    namespace: &str,
) -> String {
    let quoted = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: adamant\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\ncontexts:\n- name: adamant\n  context:\n    cluster: adamant\n    user: {user}\n    namespace: {namespace}\ncurrent-context: adamant\n",
        server = quoted(server_url),
        user = quoted(user),
        namespace = quoted(namespace),
        ca = b64(ca_pem),
        cert = b64(&client.certificate_pem),
        key = b64(&client.key_pem),
    )
}

/// Writes `contents` to `path` through a temporary file; a `private` file is 0600 from its
/// creation, never readable by others for a moment.
pub fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let error = |source| PkiError::Write {
        path: path.display().to_string(),
        source,
    };
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
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

/// Writes `DATA/pki/` (the root certificate, the client CA's certificate and key for
/// `adamant kubeconfig`, the serving and admin certificates and keys) and the admin's
/// `DATA/kubeconfig` for `server_url`. Keys are 0600 in a 0700 directory.
pub fn export(
    data_dir: &Path,
    authorities: &Authorities,
    server: &Issued,
    admin: &Issued,
    server_url: &str,
) -> Result<(), PkiError> {
    let pki = data_dir.join("pki");
    private_dir(&pki).map_err(|source| PkiError::Write {
        path: pki.display().to_string(),
        source,
    })?;
    let root = &authorities.root;
    let client_ca = &authorities.client_ca;
    write_file(
        &pki.join("root-certificate.pem"),
        &root.certificate_pem,
        false,
    )?;
    write_file(
        &pki.join("client-ca.crt"),
        &client_ca.certificate_pem,
        false,
    )?;
    write_file(&pki.join("client-ca.key"), &client_ca.key_pem(), true)?;
    write_file(&pki.join("apiserver.crt"), &server.certificate_pem, false)?;
    write_file(&pki.join("apiserver.key"), &server.key_pem, true)?;
    write_file(&pki.join("admin.crt"), &admin.certificate_pem, false)?;
    write_file(&pki.join("admin.key"), &admin.key_pem, true)?;
    let kubeconfig = kubeconfig(
        server_url,
        &root.certificate_pem,
        ADMIN_USER,
        admin,
        "default",
    );
    write_file(&data_dir.join("kubeconfig"), &kubeconfig, true)
}
