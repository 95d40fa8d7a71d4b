//! A NATS server in operator (decentralized JWT) mode for one test: an operator, an
//! account with JetStream enabled and a user, their JWTs signed here with NKeys (what
//! `nsc` would make), the server's config, and the user's `.creds` file — the file
//! `NATS_CREDS` points at in production.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use serde_json::{Value, json};

/// The files of an operator-mode setup.
#[derive(Debug, Clone)]
pub struct NatsAuth {
    /// nats-server configuration (operator, memory resolver with the account preloaded).
    pub config: PathBuf,
    /// The user's credentials (JWT + NKey seed).
    pub creds: PathBuf,
    /// Credentials of a user signed by an account the server does not know.
    pub foreign_creds: PathBuf,
}

fn encode(claims: &Value, signer: &KeyPair) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{body}");
    let signature = signer.sign(signing_input.as_bytes()).expect("sign JWT");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn claims(issuer: &KeyPair, subject: &str, name: &str, nats: Value) -> Value {
    json!({
        "jti": uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
        "iat": chrono::Utc::now().timestamp(),
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    })
}

fn user_jwt(account: &KeyPair, user: &KeyPair) -> String {
    let nats = json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                      "type": "user", "version": 2});
    encode(
        &claims(account, &user.public_key(), "smpp-connector", nats),
        account,
    )
}

fn creds(dir: &Path, name: &str, jwt: &str, user: &KeyPair) -> PathBuf {
    let path = dir.join(name);
    let seed = user.seed().expect("user seed");
    std::fs::write(
        &path,
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        ),
    )
    .expect("write creds");
    path
}

impl NatsAuth {
    pub fn new(dir: &Path) -> NatsAuth {
        let operator = KeyPair::new_operator();
        let account = KeyPair::new_account();
        let user = KeyPair::new_user();
        let operator_jwt = encode(
            &claims(
                &operator,
                &operator.public_key(),
                "test-operator",
                json!({"type": "operator", "version": 2}),
            ),
            &operator,
        );
        let limits = json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
            "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
        });
        let account_jwt = encode(
            &claims(
                &operator,
                &account.public_key(),
                "SMS",
                json!({"limits": limits, "default_permissions": {"pub": {}, "sub": {}},
                       "type": "account", "version": 2}),
            ),
            &operator,
        );
        // JetStream needs a system account.
        let system = KeyPair::new_account();
        let system_jwt = encode(
            &claims(
                &operator,
                &system.public_key(),
                "SYS",
                json!({"type": "account", "version": 2}),
            ),
            &operator,
        );
        let operator_file = dir.join("operator.jwt");
        std::fs::write(&operator_file, &operator_jwt).expect("operator jwt");
        let config = dir.join("operator-mode.conf");
        std::fs::write(
            &config,
            format!(
                "operator: \"{}\"\nsystem_account: {}\nresolver: MEMORY\n\
                 resolver_preload: {{\n  {}: \"{}\"\n  {}: \"{}\"\n}}\n",
                operator_file.display(),
                system.public_key(),
                account.public_key(),
                account_jwt,
                system.public_key(),
                system_jwt
            ),
        )
        .expect("nats config");

        let stranger = KeyPair::new_account();
        let foreign_user = KeyPair::new_user();
        NatsAuth {
            config,
            creds: creds(dir, "user.creds", &user_jwt(&account, &user), &user),
            foreign_creds: creds(
                dir,
                "foreign.creds",
                &user_jwt(&stranger, &foreign_user),
                &foreign_user,
            ),
        }
    }
}
