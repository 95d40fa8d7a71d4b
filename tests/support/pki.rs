//! Certificates made for one test: a CA, a server certificate for `localhost` and
//! 127.0.0.1, and a client certificate, all signed by the CA (PEM files in a scratch
//! directory). A second, unrelated CA lets a test present a certificate nobody trusts.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// PEM files of a small PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed none of the above.
    pub other_ca: PathBuf,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, name);
    (params.self_signed(&key).expect("CA certificate"), key)
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("write PEM");
    path
}

impl Pki {
    pub fn new(test: &str) -> Pki {
        let dir = super::scratch(&format!("{test}-pki"));
        let (ca_cert, ca_key) = ca("smpp-connector test CA");
        let (other_cert, _) = ca("unrelated CA");

        let server_key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        server
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        server
            .distinguished_name
            .push(DnType::CommonName, "smsc.test");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server
            .signed_by(&server_key, &ca_cert, &ca_key)
            .expect("server certificate");

        let client_key = KeyPair::generate().expect("client key");
        let mut client = CertificateParams::new(Vec::<String>::new()).expect("params");
        client
            .distinguished_name
            .push(DnType::CommonName, "smpp-connector");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client
            .signed_by(&client_key, &ca_cert, &ca_key)
            .expect("client certificate");

        Pki {
            ca: write(&dir, "ca.pem", &ca_cert.pem()),
            server_cert: write(&dir, "server.pem", &server.pem()),
            server_key: write(&dir, "server.key", &server_key.serialize_pem()),
            client_cert: write(&dir, "client.pem", &client.pem()),
            client_key: write(&dir, "client.key", &client_key.serialize_pem()),
            other_ca: write(&dir, "other-ca.pem", &other_cert.pem()),
        }
    }
}
