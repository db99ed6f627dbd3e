//! Simulated EVE devices. A [`Device`] speaks the device API v2 as EVE does: a new TLS
//! connection for every request (resumed sessions), `GET certs` checked against the root,
//! `register` signed with the onboarding key, `uuid`, the attestation cycle, `config` with the
//! last hash and the integrity token, `info`, `metrics` and `newlogs`; every response's
//! signature is verified against the controller's signing certificate.

pub mod fleet;
pub mod keys;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use eve_api::Message;
use eve_api::attest::{ZAttestReq, ZAttestReqType, ZAttestResponse};
use eve_api::certs::{ZCertType, ZControllerCert};
use eve_api::config::{ConfigRequest, ConfigResponse, EdgeDevConfig};
use eve_api::envelope::{Opened, Signer, pem_to_der, public_key, sha256};
use eve_api::info::{
    ZInfoApp, ZInfoDevSw, ZInfoDevice, ZInfoMsg, ZInfoTypes, z_info_msg::InfoContent,
};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

/// What can go wrong for a simulated device.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The connection failed.
    #[error("connection: {0}")]
    Connection(String),
    /// The controller answered with an unexpected status.
    #[error("{what}: the controller answered {status}")]
    Status {
        /// The request.
        what: &'static str,
        /// The status.
        status: StatusCode,
    },
    /// A response did not verify or decode.
    #[error("{0}")]
    Response(String),
    /// A key or certificate could not be used.
    #[error("{0}")]
    Identity(String),
}

/// A certificate and its key, PEM.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The certificate.
    pub certificate_pem: Vec<u8>,
    /// The PKCS#8 private key.
    pub key_pem: Vec<u8>,
}

impl Identity {
    /// A new key and self-signed P-256 certificate named `name`, as EVE makes its device
    /// certificate.
    pub fn generate(name: &str) -> Result<Identity, SimError> {
        let authority =
            pki::Authority::generate(name).map_err(|e| SimError::Identity(e.to_string()))?;
        Ok(Identity {
            key_pem: authority.key_pem().into_bytes(),
            certificate_pem: authority.certificate_pem.into_bytes(),
        })
    }

    /// A device identity issued by the certificate authority `ca` (for the
    /// DeviceCertificateAuthority policy).
    pub fn issued_by(ca: &Identity, name: &str) -> Result<Identity, SimError> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let authority = pki::Authority::from_pem(&text(&ca.certificate_pem), &text(&ca.key_pem))
            .map_err(|e| SimError::Identity(e.to_string()))?;
        let issued = authority
            .issue_leaf(name, pki::Leaf::Signing)
            .map_err(|e| SimError::Identity(e.to_string()))?;
        Ok(Identity {
            certificate_pem: issued.certificate_pem.into_bytes(),
            key_pem: issued.key_pem.into_bytes(),
        })
    }
}

/// How to reach the controller.
#[derive(Clone)]
pub struct Controller {
    address: SocketAddr,
    server_name: ServerName<'static>,
    host: String,
    tls: Arc<rustls::ClientConfig>,
    root_der: Vec<u8>,
}

impl Controller {
    /// The controller at `address`, named `host` (its certificate must name it), trusted through
    /// `root_pem` (the device's `/config/root-certificate.pem`).
    pub fn new(address: SocketAddr, host: &str, root_pem: &[u8]) -> Result<Controller, SimError> {
        let bad = |e: &dyn std::fmt::Display| SimError::Identity(format!("root certificate: {e}"));
        let mut roots = rustls::RootCertStore::empty();
        let mut root_der = Vec::new();
        for certificate in CertificateDer::pem_slice_iter(root_pem) {
            let certificate = certificate.map_err(|e| bad(&e))?;
            root_der = certificate.to_vec();
            roots.add(certificate).map_err(|e| bad(&e))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Controller {
            address,
            server_name: ServerName::try_from(host.to_string()).map_err(|e| bad(&e))?,
            host: host.to_string(),
            tls: Arc::new(tls),
            root_der,
        })
    }

    /// One request on a new connection (from `source`, if given), as EVE sends them.
    pub async fn request(
        &self,
        source: Option<IpAddr>,
        method: http::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), SimError> {
        let connection = |e: &dyn std::fmt::Display| SimError::Connection(e.to_string());
        let socket = if self.address.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(|e| connection(&e))?;
        if let Some(source) = source {
            socket
                .bind(SocketAddr::new(source, 0))
                .map_err(|e| connection(&e))?;
        }
        let tcp = socket
            .connect(self.address)
            .await
            .map_err(|e| connection(&e))?;
        // Go's connections, EVE's among them, are TCP_NODELAY.
        tcp.set_nodelay(true).map_err(|e| connection(&e))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| connection(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| connection(&e))?;
        tokio::spawn(conn);
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(format!("https://{}{path}", self.host))
            .header(http::header::HOST, &self.host)
            // Go's client with keep-alives off, as EVE's, says so.
            .header(http::header::CONNECTION, "close");
        if method == http::Method::POST {
            request = request.header(http::header::CONTENT_TYPE, "application/x-proto-binary");
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| connection(&e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| connection(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| connection(&e))?
            .to_bytes();
        Ok((status, body))
    }
}

/// One simulated device.
pub struct Device {
    controller: Controller,
    /// The loopback address its connections come from (spreads ephemeral ports).
    pub source: Option<IpAddr>,
    identity: Identity,
    signer: Signer,
    onboard: Option<Identity>,
    /// Its serial number.
    pub serial: String,
    /// The UUID the controller gave it.
    pub uuid: Option<String>,
    signing: Option<(Vec<u8>, [u8; 32])>,
    token: Vec<u8>,
    /// The keys the controller returned with the last quote (what the device escrowed).
    pub escrowed: Vec<eve_api::attest::AttestVolumeKey>,
    /// The hash of the last configuration applied.
    pub config_hash: String,
    /// The last configuration applied.
    pub config: Option<EdgeDevConfig>,
    /// Whether it has a (simulated) TPM: an attestation key, and quotes it signs.
    tpm: bool,
    keys: Option<keys::Keys>,
    /// The controller's ECDH public key (SEC1), from `certs`.
    controller_ecdh: Option<Vec<u8>>,
}

const PREFIX: &str = "/api/v2/edgedevice/";

impl Device {
    /// A device with its own identity, and an onboarding certificate if it registers.
    pub fn new(
        controller: Controller,
        identity: Identity,
        onboard: Option<Identity>,
        serial: &str,
    ) -> Result<Device, SimError> {
        let signer = Signer::device(&identity.key_pem, &identity.certificate_pem)
            .map_err(|e| SimError::Identity(e.to_string()))?;
        Ok(Device {
            controller,
            source: None,
            identity,
            signer,
            onboard,
            serial: serial.into(),
            uuid: None,
            signing: None,
            token: Vec::new(),
            escrowed: Vec::new(),
            config_hash: String::new(),
            config: None,
            tpm: false,
            keys: None,
            controller_ecdh: None,
        })
    }

    /// The same device with a simulated TPM: it uploads an attestation key's certificate and
    /// sends signed quotes of its PCRs.
    pub fn with_tpm(mut self) -> Device {
        self.tpm = true;
        self.keys = None;
        self
    }

    /// Its ECDH and attestation keys, made on first use.
    pub fn keys(&mut self) -> Result<&keys::Keys, SimError> {
        if self.keys.is_none() {
            self.keys = Some(keys::Keys::new(&self.identity, self.tpm)?);
        }
        Ok(self.keys.as_ref().expect("just made"))
    }

    /// Opens a cipher block of its configuration (credentials) as EVE does.
    pub fn open_block(
        &mut self,
        block: &eve_api::common::CipherBlock,
    ) -> Result<eve_api::common::EncryptionBlock, SimError> {
        let controller = self
            .controller_ecdh
            .clone()
            .ok_or_else(|| SimError::Response("no controller ECDH certificate yet".into()))?;
        self.keys()?.open(&controller, block)
    }

    async fn post(
        &self,
        what: &'static str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), SimError> {
        let (status, body) = self
            .controller
            .request(self.source, http::Method::POST, path, body)
            .await?;
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            Ok((status, body))
        } else {
            Err(SimError::Status { what, status })
        }
    }

    fn device_path(&self, action: &str) -> String {
        format!("{PREFIX}id/{}/{action}", self.uuid.as_deref().unwrap_or(""))
    }

    /// Opens a signed response: checks that it names the signing certificate of `/certs` and
    /// that the signature verifies.
    pub fn open<M: Message + Default>(&self, body: &[u8]) -> Result<M, SimError> {
        let (key, hash) = self
            .signing
            .as_ref()
            .ok_or_else(|| SimError::Response("no controller certificates yet".into()))?;
        let opened = Opened::decode(body).map_err(|e| SimError::Response(e.to_string()))?;
        if !hash.starts_with(&opened.sender_hash) {
            return Err(SimError::Response(
                "the response is signed by another certificate".into(),
            ));
        }
        opened
            .verify(key)
            .map_err(|e| SimError::Response(e.to_string()))?;
        M::decode(opened.payload.as_slice()).map_err(|e| SimError::Response(e.to_string()))
    }

    /// `GET certs`: one signing certificate and an ECDH one, both signed by the root.
    pub async fn certs(&mut self) -> Result<(), SimError> {
        let (status, body) = self
            .controller
            .request(
                self.source,
                http::Method::GET,
                &format!("{PREFIX}certs"),
                Vec::new(),
            )
            .await?;
        if status != StatusCode::OK {
            return Err(SimError::Status {
                what: "certs",
                status,
            });
        }
        let opened = Opened::decode(&body).map_err(|e| SimError::Response(e.to_string()))?;
        let chain = ZControllerCert::decode(opened.payload.as_slice())
            .map_err(|e| SimError::Response(e.to_string()))?;
        let of = |kind: ZCertType| chain.certs.iter().filter(move |c| c.r#type == kind as i32);
        let signing: Vec<_> = of(ZCertType::CertTypeControllerSigning).collect();
        if signing.len() != 1 || of(ZCertType::CertTypeControllerEcdhExchange).count() == 0 {
            return Err(SimError::Response(
                "certs must hold exactly one signing certificate and an ECDH one".into(),
            ));
        }
        let (_, root) = x509_parser::parse_x509_certificate(&self.controller.root_der)
            .map_err(|e| SimError::Response(e.to_string()))?;
        for certificate in &chain.certs {
            let der =
                pem_to_der(&certificate.cert).map_err(|e| SimError::Response(e.to_string()))?;
            let (_, parsed) = x509_parser::parse_x509_certificate(&der)
                .map_err(|e| SimError::Response(e.to_string()))?;
            parsed
                .verify_signature(Some(root.public_key()))
                .map_err(|_| {
                    SimError::Response("a controller certificate is not signed by the root".into())
                })?;
            if certificate.cert_hash != sha256(&certificate.cert) {
                return Err(SimError::Response(
                    "a certHash is not the hash of its PEM".into(),
                ));
            }
        }
        let ecdh = of(ZCertType::CertTypeControllerEcdhExchange)
            .next()
            .map(|c| pem_to_der(&c.cert).and_then(|der| public_key(&der)))
            .transpose()
            .map_err(|e| SimError::Response(e.to_string()))?;
        self.controller_ecdh = ecdh;
        let der = pem_to_der(&signing[0].cert).map_err(|e| SimError::Response(e.to_string()))?;
        self.signing = Some((
            public_key(&der).map_err(|e| SimError::Response(e.to_string()))?,
            sha256(&signing[0].cert),
        ));
        Ok(())
    }

    /// `POST register`, signed with the onboarding key. Returns the status.
    pub async fn register(&self) -> Result<StatusCode, SimError> {
        let onboard = self
            .onboard
            .as_ref()
            .ok_or_else(|| SimError::Identity("no onboarding certificate".into()))?;
        let signer = Signer::device(&onboard.key_pem, &onboard.certificate_pem)
            .map_err(|e| SimError::Identity(e.to_string()))?
            .with_certificate(&onboard.certificate_pem);
        let message = eve_api::register::ZRegisterMsg {
            on_board_key: String::new(),
            pem_cert: base64::engine::general_purpose::STANDARD
                .encode(&self.identity.certificate_pem)
                .into_bytes(),
            serial: self.serial.clone(),
            soft_serial: String::new(),
        };
        let (status, _) = self
            .post(
                "register",
                &format!("{PREFIX}register"),
                signer.seal(message.encode_to_vec()),
            )
            .await?;
        Ok(status)
    }

    /// `POST uuid`.
    pub async fn fetch_uuid(&mut self) -> Result<String, SimError> {
        let (_, body) = self
            .post(
                "uuid",
                &format!("{PREFIX}uuid"),
                self.signer.seal(Vec::new()),
            )
            .await?;
        let response: eve_api::uuid::UuidResponse = self.open(&body)?;
        self.uuid = Some(response.uuid.clone());
        Ok(response.uuid)
    }

    async fn attest_step(&self, request: ZAttestReq) -> Result<ZAttestResponse, SimError> {
        let (_, body) = self
            .post(
                "attest",
                &self.device_path("attest"),
                self.signer.seal(request.encode_to_vec()),
            )
            .await?;
        self.open(&body)
    }

    /// The attestation cycle: its certificates (ECDH, and the attestation key's with a TPM),
    /// a nonce, a quote (signed PCRs with a TPM, empty without).
    pub async fn attest(&mut self) -> Result<(), SimError> {
        self.upload_certificates().await?;
        let nonce = self.nonce().await?;
        if !(12..=32).contains(&nonce.len()) {
            return Err(SimError::Response(format!(
                "a nonce of {} bytes",
                nonce.len()
            )));
        }
        let quote = self.keys()?.quote(&nonce, &[]);
        let answer = self.send_quote(quote).await?;
        self.escrowed = answer.keys;
        Ok(())
    }

    /// Uploads its certificates (`ATTEST_REQ_CERT`).
    pub async fn upload_certificates(&mut self) -> Result<(), SimError> {
        let certs = self.keys()?.certificates();
        self.attest_step(ZAttestReq {
            req_type: ZAttestReqType::AttestReqCert as i32,
            certs,
            ..ZAttestReq::default()
        })
        .await?;
        Ok(())
    }

    /// Sends `quote`; the controller's answer. A successful one's integrity token becomes the
    /// device's.
    pub async fn send_quote(
        &mut self,
        quote: eve_api::attest::ZAttestQuote,
    ) -> Result<eve_api::attest::ZAttestQuoteResp, SimError> {
        let response = self
            .attest_step(ZAttestReq {
                req_type: ZAttestReqType::AttestReqQuote as i32,
                quote: Some(quote),
                ..ZAttestReq::default()
            })
            .await?
            .quote_resp
            .unwrap_or_default();
        if !response.integrity_token.is_empty() {
            self.token = response.integrity_token.clone();
        }
        Ok(response)
    }

    /// Asks for an attestation nonce.
    pub async fn nonce(&self) -> Result<Vec<u8>, SimError> {
        let response = self
            .attest_step(ZAttestReq {
                req_type: ZAttestReqType::AttestReqNonce as i32,
                ..ZAttestReq::default()
            })
            .await?;
        Ok(response.nonce.map(|n| n.nonce).unwrap_or_default())
    }

    /// Sends a quote whose TPM-signed data is `attest_data` (empty: a device without a TPM),
    /// unsigned; the controller's answer.
    pub async fn quote(
        &mut self,
        attest_data: Vec<u8>,
    ) -> Result<eve_api::attest::ZAttestQuoteResp, SimError> {
        self.send_quote(eve_api::attest::ZAttestQuote {
            attest_data,
            ..Default::default()
        })
        .await
    }

    /// The integrity token the device holds.
    pub fn token(&self) -> &[u8] {
        &self.token
    }

    /// Holds `token` as its integrity token from now on.
    pub fn set_token(&mut self, token: Vec<u8>) {
        self.token = token;
    }

    /// Escrows a (device-encrypted) vault key with the controller, as EVE does after
    /// attestation. Whether the controller took it.
    pub async fn escrow(&self, key: &[u8]) -> Result<bool, SimError> {
        let response = self
            .attest_step(ZAttestReq {
                req_type: ZAttestReqType::StoreKeys as i32,
                storage_keys: Some(eve_api::attest::AttestStorageKeys {
                    integrity_token: self.token.clone(),
                    keys: vec![eve_api::attest::AttestVolumeKey {
                        key_type: eve_api::attest::AttestVolumeKeyType::Vsk as i32,
                        key: key.to_vec(),
                        ..Default::default()
                    }],
                }),
                ..ZAttestReq::default()
            })
            .await?;
        Ok(response.storage_keys_resp.map(|r| r.response)
            == Some(eve_api::attest::AttestStorageKeysResponseCode::Success as i32))
    }

    /// `POST config`: the new configuration, or `None` when unchanged (304).
    pub async fn poll_config(&mut self) -> Result<Option<&EdgeDevConfig>, SimError> {
        let request = ConfigRequest {
            config_hash: self.config_hash.clone(),
            integrity_token: self.token.clone(),
        };
        let (status, body) = self
            .post(
                "config",
                &self.device_path("config"),
                self.signer.seal(request.encode_to_vec()),
            )
            .await?;
        if status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        // A response signed by a certificate the device does not know: fetch /certs again (EVE
        // does on any certificate miss; that is how the controller rotates them).
        let response: ConfigResponse = match self.open(&body) {
            Ok(response) => response,
            Err(_) => {
                self.certs().await?;
                self.open(&body)?
            }
        };
        if response.config_hash == self.config_hash {
            return Ok(None);
        }
        self.config_hash = response.config_hash;
        self.config = response.config;
        Ok(self.config.as_ref())
    }

    async fn info(&self, content: InfoContent, kind: ZInfoTypes) -> Result<(), SimError> {
        let message = ZInfoMsg {
            ztype: kind as i32,
            dev_id: self.uuid.clone().unwrap_or_default(),
            info_content: Some(content),
            at_time_stamp: None,
        };
        self.post(
            "info",
            &self.device_path("info"),
            self.signer.seal(message.encode_to_vec()),
        )
        .await?;
        Ok(())
    }

    /// Reports the device: EVE-OS `version`, one CPU count, memory (MiB), an address.
    pub async fn report_device(&self, version: &str, address: &str) -> Result<(), SimError> {
        self.info(
            InfoContent::Dinfo(ZInfoDevice {
                machine_arch: "x86_64".into(),
                ncpu: 4,
                memory: 8192,
                storage: 65536,
                host_name: self.uuid.clone().unwrap_or_default(),
                network: vec![eve_api::info::ZInfoNetwork {
                    dev_name: "eth0".into(),
                    ip_addrs: vec![address.into()],
                    uplink: true,
                    ..Default::default()
                }],
                sw_list: vec![ZInfoDevSw {
                    activated: true,
                    partition_label: "IMGA".into(),
                    short_version: version.into(),
                    status: eve_api::info::ZSwState::Running as i32,
                    ..Default::default()
                }],
                ..ZInfoDevice::default()
            }),
            ZInfoTypes::ZiDevice,
        )
        .await
    }

    /// Reports an application's state.
    pub async fn report_app(
        &self,
        uuid: &str,
        name: &str,
        state: eve_api::info::ZSwState,
    ) -> Result<(), SimError> {
        self.info(
            InfoContent::Ainfo(ZInfoApp {
                app_id: uuid.into(),
                app_name: name.into(),
                state: state as i32,
                ..ZInfoApp::default()
            }),
            ZInfoTypes::ZiApp,
        )
        .await
    }

    /// Reports a volume's state (and progress in percent).
    pub async fn report_volume(
        &self,
        uuid: &str,
        name: &str,
        state: eve_api::info::ZSwState,
        progress: u32,
    ) -> Result<(), SimError> {
        self.info(
            InfoContent::Vinfo(eve_api::info::ZInfoVolume {
                uuid: uuid.into(),
                display_name: name.into(),
                state: state as i32,
                progress_percentage: progress,
                ..Default::default()
            }),
            ZInfoTypes::ZiVolume,
        )
        .await
    }

    /// Reports a content tree's state (an Image being downloaded, verified, loaded), its
    /// progress in percent and, if any, its error.
    pub async fn report_content_tree(
        &self,
        uuid: &str,
        name: &str,
        state: eve_api::info::ZSwState,
        progress: u32,
        error: Option<&str>,
    ) -> Result<(), SimError> {
        self.info(
            InfoContent::Cinfo(eve_api::info::ZInfoContentTree {
                uuid: uuid.into(),
                display_name: name.into(),
                state: state as i32,
                progress_percentage: progress,
                err: error.map(|description| eve_api::info::ErrorInfo {
                    description: description.into(),
                    severity: eve_api::info::Severity::Error as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ZInfoTypes::ZiContentTree,
        )
        .await
    }

    /// Posts metrics as EVE's `zedagent` does, with made-up figures: CPU time (12.5 s), memory
    /// (512 MB used of 2048), `/persist` (250 MB used of 1000) and two ports' bytes (101
    /// received, 12 sent in all).
    pub async fn metrics(&self) -> Result<(), SimError> {
        use eve_api::telemetry::{
            CpuMetric, DeviceMemoryMetric, DeviceMetric, DiskMetric, MemoryMetric, NetworkMetric,
            z_metric_msg::MetricContent,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let port = |name: &str, rx_bytes, tx_bytes| NetworkMetric {
            i_name: name.into(),
            rx_bytes,
            tx_bytes,
            ..NetworkMetric::default()
        };
        let message = eve_api::telemetry::ZMetricMsg {
            dev_id: self.uuid.clone().unwrap_or_default(),
            at_time_stamp: Some(pbjson_types::Timestamp {
                seconds: now.as_secs() as i64,
                nanos: now.subsec_nanos() as i32,
            }),
            metric_content: Some(MetricContent::Dm(DeviceMetric {
                cpu_metric: Some(CpuMetric {
                    total: 12,
                    total_ns: 12_500_000_000,
                    ..CpuMetric::default()
                }),
                memory: Some(MemoryMetric {
                    used_mem: 512,
                    avail_mem: 1536,
                }),
                device_memory: Some(DeviceMemoryMetric {
                    memory_mb: 2048,
                    allocated_apps_mb: 256,
                    allocated_eve_mb: 400,
                    used_eve_mb: 256,
                }),
                disk: vec![DiskMetric {
                    disk: "sda9".into(),
                    mount_path: "/persist".into(),
                    total: 1000,
                    used: 250,
                    free: 750,
                    ..DiskMetric::default()
                }],
                network: vec![port("eth0", 100, 10), port("eth1", 1, 2)],
                ..DeviceMetric::default()
            })),
            ..eve_api::telemetry::ZMetricMsg::default()
        };
        self.post(
            "metrics",
            &self.device_path("metrics"),
            self.signer.seal(message.encode_to_vec()),
        )
        .await?;
        Ok(())
    }

    /// Posts a flow log of one flow (10.1.0.2:40000 to 1.1.1.1:443, TCP, accepted) and one DNS
    /// request, as EVE's `zedrouter` does.
    pub async fn flowlog(&self) -> Result<(), SimError> {
        use eve_api::telemetry::{AclAction, DnsRequest, FlowMessage, FlowRecord, IpFlow};
        let message = FlowMessage {
            dev_id: self.uuid.clone().unwrap_or_default(),
            flows: vec![FlowRecord {
                flow: Some(IpFlow {
                    src: "10.1.0.2".into(),
                    src_port: 40000,
                    dest: "1.1.1.1".into(),
                    dest_port: 443,
                    protocol: 6,
                }),
                tx_bytes: 1200,
                rx_bytes: 5400,
                action: AclAction::ActionAccept as i32,
                ..FlowRecord::default()
            }],
            dns_reqs: vec![DnsRequest {
                host_name: "one.one.one.one".into(),
                addrs: vec!["1.1.1.1".into()],
                ..DnsRequest::default()
            }],
            ..FlowMessage::default()
        };
        self.post(
            "flowlog",
            &self.device_path("flowlog"),
            self.signer.seal(message.encode_to_vec()),
        )
        .await?;
        Ok(())
    }

    /// Posts a `newlogs` file of the device's own log lines (gzip, the bundle's metadata in
    /// the gzip Comment, one Go-style JSON `LogEntry` per line), as EVE's log uploader does.
    pub async fn logs(&self, messages: &[&str]) -> Result<(), SimError> {
        let meta = serde_json::json!({
            "devID": self.uuid.clone().unwrap_or_default(),
            "image": "IMGA",
            "eveVersion": "0.0.0-sim",
        });
        let file =
            eve_api::newlogs::write(&meta.to_string(), false, &log_lines("zedagent", messages));
        self.post(
            "newlogs",
            &self.device_path("newlogs"),
            self.signer.seal(file),
        )
        .await?;
        Ok(())
    }

    /// Posts a `newlogs` file of the device's own log entries as given (Go-style JSON
    /// `LogEntry` objects: `severity`, `source`, `content`, `timestamp`...).
    pub async fn log_entries(&self, entries: &[serde_json::Value]) -> Result<(), SimError> {
        let meta = serde_json::json!({"devID": self.uuid.clone().unwrap_or_default()});
        let file = eve_api::newlogs::write(&meta.to_string(), false, entries);
        self.post(
            "newlogs",
            &self.device_path("newlogs"),
            self.signer.seal(file),
        )
        .await?;
        Ok(())
    }

    /// Posts a `newlogs` file of an application's console lines (the display name in the gzip
    /// Name), to `id/{device}/apps/instanceid/{app}/newlogs` as EVE does.
    pub async fn app_logs(&self, app: &str, name: &str, messages: &[&str]) -> Result<(), SimError> {
        let file = eve_api::newlogs::write(name, true, &log_lines(app, messages));
        self.post(
            "app newlogs",
            &self.device_path(&format!("apps/instanceid/{app}/newlogs")),
            self.signer.seal(file),
        )
        .await?;
        Ok(())
    }

    /// Sends a raw, already sealed body to `action` (for tests of bad input).
    pub async fn raw(&self, path: &str, body: Vec<u8>) -> Result<StatusCode, SimError> {
        let (status, _) = self
            .controller
            .request(self.source, http::Method::POST, path, body)
            .await?;
        Ok(status)
    }

    /// Talks to `controller` from now on (the controller moved or restarted); what the device
    /// learned (UUID, certificates, token, configuration hash) stays.
    pub fn reconnect(&mut self, controller: Controller) {
        self.controller = controller;
    }

    /// This device's signer (for tests that forge requests).
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The path of a device endpoint.
    pub fn path(&self, action: &str) -> String {
        self.device_path(action)
    }

    /// Onboards: certs, register (if it has an onboarding certificate), uuid, attestation.
    pub async fn onboard(&mut self) -> Result<String, SimError> {
        self.certs().await?;
        if self.onboard.is_some() {
            self.register().await?;
        }
        let uuid = self.fetch_uuid().await?;
        self.attest().await?;
        Ok(uuid)
    }
}

/// Log lines as EVE writes them (Go's JSON of `LogEntry`).
fn log_lines(source: &str, messages: &[&str]) -> Vec<serde_json::Value> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    messages
        .iter()
        .enumerate()
        .map(|(i, content)| {
            serde_json::json!({
                "severity": "info",
                "source": source,
                "content": content,
                "msgid": i + 1,
                "timestamp": {"seconds": now.as_secs(), "nanos": now.subsec_nanos()},
            })
        })
        .collect()
}
