//! How the service reaches its backends, read from `NATS_URL`, `REDIS_URL`, `DATABASE_URL`
//! and their TLS variables: which servers, which topology, and how TLS is verified.
//!
//! One rule for all three: TLS is verified by default and never falls back to plaintext.
//! A URL that asks for TLS (`tls://`, `rediss://`, an `sslmode` other than `disable`) is
//! served over TLS or not at all, and TLS files given beside a plaintext URL are an error,
//! not silently ignored. Everything here is pure: the service builds the TLS clients from
//! these settings (`actors/src/tls.rs`) and reads the files at startup.
//!
//! `DATABASE_URL` is understood as libpq understands it, with one difference: without
//! `sslmode` the mode is `verify-full` (libpq's default, `prefer`, may talk plaintext to a
//! server that does not offer TLS and never checks the certificate).
//!
//! | sslmode | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | no | — |
//! | `prefer` | when the server offers it (plaintext otherwise; warned at startup) | chain only, and only with `sslrootcert` |
//! | `require` | always | chain only, and only with `sslrootcert` (as libpq) |
//! | `verify-ca` | always | chain, against `sslrootcert` (or the system roots) |
//! | `verify-full` (default) | always | chain and host name |
//!
//! `allow` (plaintext first) is refused.

use std::fmt;
use std::time::Duration;

use crate::settings::{ConfigError, Secret, TlsFiles, env};

/// Most replicas a JetStream stream or bucket may have.
pub const MAX_STREAM_REPLICAS: usize = 5;

/// NATS servers and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// Every server of `NATS_URL` (comma-separated), as given.
    pub servers: Vec<Secret>,
    /// The same, without user names or passwords: for logs and errors.
    pub display: String,
    pub creds: Option<String>,
    pub tls: TlsFiles,
    /// A `tls://` URL or a TLS variable: every connection is TLS, verified.
    pub require_tls: bool,
    /// Replicas of the streams and KV buckets the service creates (`NATS_STREAM_REPLICAS`).
    pub stream_replicas: usize,
}

/// The shape of the Redis deployment, from the scheme of `REDIS_URL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisTopology {
    /// One server (`redis://`, `rediss://`), possibly a managed primary endpoint.
    Standalone,
    /// Redis Cluster (`redis-cluster://h1:p1?node=h2:p2`).
    Cluster,
    /// A primary found through Sentinel (`redis-sentinel://s1:p1?node=s2:p2&sentinelServiceName=NAME`).
    Sentinel,
}

impl RedisTopology {
    pub fn as_str(self) -> &'static str {
        match self {
            RedisTopology::Standalone => "standalone",
            RedisTopology::Cluster => "cluster",
            RedisTopology::Sentinel => "sentinel",
        }
    }
}

/// Redis and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `REDIS_URL` as given (it may hold a password).
    pub url: Secret,
    /// The URL without user name or password: for logs and errors.
    pub display: String,
    pub topology: RedisTopology,
    /// `rediss…://`: TLS with these files (the CA `None`: the system's roots).
    pub tls: Option<TlsFiles>,
}

/// What `sslmode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The `sslmode` tokio-postgres understands (it does the negotiation; our TLS
    /// connector does the verification).
    pub fn negotiation(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }
}

/// Where the certificates that verify the server come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// The system's trust store (`sslrootcert=system`, or none given with `verify-*`).
    System,
    /// A PEM file.
    File(String),
    /// Nothing: the chain is not checked (`prefer`/`require` without `sslrootcert`).
    Unverified,
}

/// How the service's PostgreSQL connections are encrypted and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTls {
    pub mode: SslMode,
    pub roots: RootCerts,
    /// `sslcert` and `sslkey` (mutual TLS).
    pub client: Option<(String, String)>,
    /// Check the host name against the certificate (`verify-full`).
    pub check_host: bool,
}

impl PgTls {
    /// The words a log line or an error uses for these settings.
    pub fn describe(&self) -> String {
        let roots = match &self.roots {
            RootCerts::System => "the system's roots".to_owned(),
            RootCerts::File(path) => format!("sslrootcert={path}"),
            RootCerts::Unverified => "no certificate check".to_owned(),
        };
        format!("sslmode={} ({roots})", self.mode.as_str())
    }
}

/// PostgreSQL and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// `DATABASE_URL` without the parameters this module handles, with the `sslmode`
    /// tokio-postgres negotiates with (see [`SslMode::negotiation`]).
    pub url: Secret,
    /// Hosts and ports, without credentials: for logs and errors.
    pub display: String,
    pub tls: PgTls,
    /// How many hosts the URL names (a primary and its standbys).
    pub hosts: usize,
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("display", &self.display)
            .field("tls", &self.tls)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// The server part of a URL without `user:password@`.
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = tail.split('?').next().unwrap_or("");
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// Decode `%XX` escapes of a query value (`+` stays a plus, as libpq reads URIs).
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `key=value` pairs of a URL's query, decoded.
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match (percent_decode(key), percent_decode(value)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(format!("has a badly escaped query parameter {key:?}")),
            }
        })
        .collect()
}

impl NatsSettings {
    /// Read `NATS_URL` (one server or a comma-separated list), `NATS_CREDS`,
    /// `NATS_TLS_*` and `NATS_STREAM_REPLICAS`.
    pub fn parse(
        url: &str,
        creds: Option<String>,
        tls: TlsFiles,
        replicas: Option<&str>,
    ) -> Result<NatsSettings, ConfigError> {
        let mut servers = Vec::new();
        let mut display = Vec::new();
        let mut any_tls = false;
        for raw in url.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let scheme = raw.split_once("://").map(|(s, _)| s);
            match scheme {
                None | Some("nats") | Some("ws") => {}
                Some("tls") | Some("wss") => any_tls = true,
                Some(other) => {
                    return Err(ConfigError::new(
                        env::NATS_URL,
                        format!(
                            "has a server with scheme {other:?}: use nats://, tls://, ws:// or wss://"
                        ),
                    ));
                }
            }
            let address = raw.split_once("://").map_or(raw, |(_, rest)| rest);
            let host = address.rsplit_once('@').map_or(address, |(_, host)| host);
            if host.is_empty() || host.starts_with(':') {
                return Err(ConfigError::new(
                    env::NATS_URL,
                    "has a server without a host",
                ));
            }
            servers.push(Secret::new(raw));
            display.push(without_credentials(raw));
        }
        if servers.is_empty() {
            return Err(ConfigError::new(env::NATS_URL, "lists no server"));
        }
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err(ConfigError::new(
                env::NATS_TLS_KEY_FILE,
                "and NATS_TLS_CERT_FILE must be set together (TLS client identity)",
            ));
        }
        let require_tls = any_tls || tls.ca_file.is_some() || tls.cert_file.is_some();
        let stream_replicas = match replicas {
            None => 1,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_STREAM_REPLICAS).contains(&n) => n,
                _ => {
                    return Err(ConfigError::new(
                        env::NATS_STREAM_REPLICAS,
                        format!("must be 1 to {MAX_STREAM_REPLICAS} (got {raw:?})"),
                    ));
                }
            },
        };
        Ok(NatsSettings {
            servers,
            display: display.join(","),
            creds,
            tls,
            require_tls,
            stream_replicas,
        })
    }
}

impl RedisSettings {
    /// Read `REDIS_URL` (fred's URL forms) and `REDIS_TLS_*`.
    pub fn parse(url: &str, tls: TlsFiles) -> Result<RedisSettings, ConfigError> {
        let err = |problem: String| ConfigError::new(env::REDIS_URL, problem);
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| err("must be a URL (redis://, rediss://, redis-cluster://, redis-sentinel://, or rediss- for TLS)".to_owned()))?;
        let (secure, topology) = match scheme {
            "redis" => (false, RedisTopology::Standalone),
            "rediss" => (true, RedisTopology::Standalone),
            "redis-cluster" => (false, RedisTopology::Cluster),
            "rediss-cluster" => (true, RedisTopology::Cluster),
            "redis-sentinel" => (false, RedisTopology::Sentinel),
            "rediss-sentinel" => (true, RedisTopology::Sentinel),
            other => {
                return Err(err(format!(
                    "has scheme {other:?}: use redis://, rediss://, redis-cluster://, rediss-cluster://, redis-sentinel:// or rediss-sentinel://"
                )));
            }
        };
        if rest.is_empty() || rest.starts_with(['/', '?']) {
            return Err(err("has no host".to_owned()));
        }
        let query = rest.split_once('?').map_or("", |(_, q)| q);
        let pairs = query_pairs(query).map_err(err)?;
        let has = |name: &str| pairs.iter().any(|(k, _)| k == name);
        match topology {
            RedisTopology::Sentinel if !has("sentinelServiceName") => {
                return Err(err(
                    "needs sentinelServiceName=NAME with redis-sentinel:// (the service name the sentinels monitor)"
                        .to_owned(),
                ));
            }
            RedisTopology::Standalone if has("node") || has("sentinelServiceName") => {
                return Err(err(format!(
                    "lists more servers with {scheme}://: use redis-cluster:// for a cluster or redis-sentinel:// for Sentinel"
                )));
            }
            _ => {}
        }
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err(ConfigError::new(
                env::REDIS_TLS_KEY_FILE,
                "and REDIS_TLS_CERT_FILE must be set together (TLS client identity)",
            ));
        }
        let tls = if secure {
            Some(tls)
        } else {
            if let Some(variable) = tls_variable_set(&tls, TLS_REDIS) {
                return Err(ConfigError::new(
                    variable,
                    format!(
                        "is set but REDIS_URL is {scheme}://, which is plaintext: use rediss{}://",
                        scheme.strip_prefix("redis").unwrap_or("")
                    ),
                ));
            }
            None
        };
        Ok(RedisSettings {
            url: Secret::new(url),
            display: without_credentials(url),
            topology,
            tls,
        })
    }
}

/// The CA, certificate and key variables of one backend.
type TlsVariables = [&'static str; 3];
const TLS_REDIS: TlsVariables = [
    env::REDIS_TLS_CA_FILE,
    env::REDIS_TLS_CERT_FILE,
    env::REDIS_TLS_KEY_FILE,
];

fn tls_variable_set(files: &TlsFiles, names: TlsVariables) -> Option<&'static str> {
    [&files.ca_file, &files.cert_file, &files.key_file]
        .into_iter()
        .zip(names)
        .find(|(value, _)| value.is_some())
        .map(|(_, name)| name)
}

/// Query parameters of `DATABASE_URL` this module takes out (tokio-postgres would refuse
/// most of them).
const PG_TLS_PARAMETERS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

impl PostgresSettings {
    /// Read `DATABASE_URL` (`postgres://` or `postgresql://`, several hosts allowed as
    /// libpq: `postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write`).
    pub fn parse(url: &str) -> Result<PostgresSettings, ConfigError> {
        let err = |problem: String| ConfigError::new(env::DATABASE_URL, problem);
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| err("must be a URL with scheme postgres or postgresql".to_owned()))?;
        let (base, query) = match rest.split_once('?') {
            Some((base, query)) => (base, query),
            None => (rest, ""),
        };
        let authority = base.split('/').next().unwrap_or("");
        let hosts_part = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let hosts = hosts_part.split(',').filter(|h| !h.is_empty()).count();
        if hosts == 0 {
            return Err(err("has no host".to_owned()));
        }
        let pairs = query_pairs(query).map_err(err)?;
        let value = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let mode = match value("sslmode") {
            None | Some("verify-full") => SslMode::VerifyFull,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("require") => SslMode::Require,
            Some("prefer") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("allow") => {
                return Err(err(
                    "sslmode=allow is refused: it tries plaintext first. Use disable, require, verify-ca or verify-full".to_owned(),
                ));
            }
            Some(other) => {
                return Err(err(format!(
                    "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                )));
            }
        };
        let root = value("sslrootcert");
        let client = match (value("sslcert"), value("sslkey")) {
            (Some(cert), Some(key)) => Some((cert.to_owned(), key.to_owned())),
            (None, None) => None,
            _ => {
                return Err(err(
                    "sslcert and sslkey must be given together (TLS client identity)".to_owned(),
                ));
            }
        };
        if mode == SslMode::Disable && (root.is_some() || client.is_some()) {
            return Err(err(
                "sets sslrootcert/sslcert/sslkey with sslmode=disable: drop them or choose a TLS mode"
                    .to_owned(),
            ));
        }
        let roots = match (mode, root) {
            (_, Some("system")) => RootCerts::System,
            (_, Some(path)) => RootCerts::File(path.to_owned()),
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => RootCerts::System,
            (_, None) => RootCerts::Unverified,
        };
        let tls = PgTls {
            mode,
            roots,
            client,
            check_host: mode == SslMode::VerifyFull,
        };

        let mut kept: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let key = p.split('=').next().unwrap_or("");
                !PG_TLS_PARAMETERS.contains(&key)
            })
            .collect();
        let negotiation = format!("sslmode={}", mode.negotiation());
        kept.push(&negotiation);
        let scheme = if url.starts_with("postgresql://") {
            "postgresql"
        } else {
            "postgres"
        };
        Ok(PostgresSettings {
            url: Secret::new(format!("{scheme}://{base}?{}", kept.join("&"))),
            display: format!(
                "{}/{}",
                hosts_part,
                base.split_once('/').map_or("", |(_, db)| db)
            ),
            tls,
            hosts,
        })
    }
}

/// How long one PostgreSQL host may take to accept a connection before the next one is
/// tried (a `connect_timeout` in the URL wins).
pub const DEFAULT_PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[cfg(test)]
mod tests {
    use super::*;

    fn files(ca: Option<&str>, cert: Option<&str>, key: Option<&str>) -> TlsFiles {
        TlsFiles {
            ca_file: ca.map(str::to_owned),
            cert_file: cert.map(str::to_owned),
            key_file: key.map(str::to_owned),
        }
    }

    #[test]
    fn database_url_defaults_to_verify_full_and_keeps_the_rest() {
        let pg = PostgresSettings::parse("postgres://u:secret@db.example:5432/smpp").unwrap();
        assert_eq!(pg.tls.mode, SslMode::VerifyFull);
        assert_eq!(pg.tls.roots, RootCerts::System);
        assert!(pg.tls.check_host);
        assert_eq!(
            pg.url.expose(),
            "postgres://u:secret@db.example:5432/smpp?sslmode=require"
        );
        assert_eq!(pg.display, "db.example:5432/smpp");
        assert!(!format!("{pg:?}").contains("secret"));
    }

    #[test]
    fn database_url_tls_parameters_are_taken_out() {
        let pg = PostgresSettings::parse(
            "postgresql://u@h1:5432,h2:5433/smpp?target_session_attrs=read-write&sslmode=verify-ca&sslrootcert=%2Fetc%2Fca.pem&sslcert=/c.pem&sslkey=/c.key&application_name=x",
        )
        .unwrap();
        assert_eq!(pg.hosts, 2);
        assert_eq!(pg.tls.mode, SslMode::VerifyCa);
        assert_eq!(pg.tls.roots, RootCerts::File("/etc/ca.pem".to_owned()));
        assert_eq!(
            pg.tls.client,
            Some(("/c.pem".to_owned(), "/c.key".to_owned()))
        );
        assert!(!pg.tls.check_host);
        assert_eq!(
            pg.url.expose(),
            "postgresql://u@h1:5432,h2:5433/smpp?target_session_attrs=read-write&application_name=x&sslmode=require"
        );
        assert_eq!(pg.display, "h1:5432,h2:5433/smpp");
    }

    #[test]
    fn weak_modes_follow_libpq() {
        let require = PostgresSettings::parse("postgres://h/db?sslmode=require").unwrap();
        assert_eq!(require.tls.roots, RootCerts::Unverified);
        let require_ca =
            PostgresSettings::parse("postgres://h/db?sslmode=require&sslrootcert=/ca.pem").unwrap();
        assert_eq!(require_ca.tls.roots, RootCerts::File("/ca.pem".to_owned()));
        let prefer = PostgresSettings::parse("postgres://h/db?sslmode=prefer").unwrap();
        assert!(prefer.url.expose().ends_with("sslmode=prefer"));
        let disable = PostgresSettings::parse("postgres://h/db?sslmode=disable").unwrap();
        assert!(disable.url.expose().ends_with("?sslmode=disable"));
        let system =
            PostgresSettings::parse("postgres://h/db?sslmode=verify-full&sslrootcert=system")
                .unwrap();
        assert_eq!(system.tls.roots, RootCerts::System);
    }

    #[test]
    fn bad_database_urls_are_named() {
        for (url, words) in [
            ("mysql://h/db", "scheme"),
            ("postgres://h/db?sslmode=allow", "allow"),
            ("postgres://h/db?sslmode=strict", "not one of"),
            ("postgres://h/db?sslcert=/c.pem", "together"),
            (
                "postgres://h/db?sslmode=disable&sslrootcert=/ca.pem",
                "disable",
            ),
            ("postgres:///db", "no host"),
            ("postgres://h/db?sslrootcert=%zz", "escaped"),
        ] {
            let err = PostgresSettings::parse(url).unwrap_err();
            assert_eq!(err.variable, env::DATABASE_URL);
            assert!(err.to_string().contains(words), "{url}: {err}");
        }
    }

    #[test]
    fn nats_url_lists_servers_and_tls_is_required_by_scheme_or_files() {
        let plain = NatsSettings::parse(
            "nats://a:1, nats://user:pw@b:2,c:3",
            None,
            TlsFiles::default(),
            None,
        )
        .unwrap();
        assert_eq!(plain.servers.len(), 3);
        assert_eq!(plain.display, "nats://a:1,nats://b:2,c:3");
        assert!(!plain.require_tls);
        assert_eq!(plain.stream_replicas, 1);
        let by_scheme =
            NatsSettings::parse("tls://a:1", None, TlsFiles::default(), Some("3")).unwrap();
        assert!(by_scheme.require_tls);
        assert_eq!(by_scheme.stream_replicas, 3);
        let by_file =
            NatsSettings::parse("nats://a:1", None, files(Some("/ca"), None, None), None).unwrap();
        assert!(by_file.require_tls);
    }

    #[test]
    fn bad_nats_settings_are_named() {
        let cases = [
            ("http://a:1", None, TlsFiles::default(), env::NATS_URL),
            (" , ", None, TlsFiles::default(), env::NATS_URL),
            (
                "nats://a:1",
                Some("0"),
                TlsFiles::default(),
                env::NATS_STREAM_REPLICAS,
            ),
            (
                "nats://a:1",
                Some("6"),
                TlsFiles::default(),
                env::NATS_STREAM_REPLICAS,
            ),
            (
                "nats://a:1",
                None,
                files(None, Some("/c"), None),
                env::NATS_TLS_KEY_FILE,
            ),
        ];
        for (url, replicas, tls, variable) in cases {
            let err = NatsSettings::parse(url, None, tls, replicas).unwrap_err();
            assert_eq!(err.variable, variable, "{url}: {err}");
        }
    }

    #[test]
    fn redis_url_forms() {
        let cases = [
            ("redis://h:6379/0", RedisTopology::Standalone, false),
            ("rediss://u:pw@h:6380", RedisTopology::Standalone, true),
            (
                "redis-cluster://h1:1?node=h2:2&node=h3:3",
                RedisTopology::Cluster,
                false,
            ),
            ("rediss-cluster://h1:1", RedisTopology::Cluster, true),
            (
                "redis-sentinel://s1:26379/0?node=s2:26379&sentinelServiceName=smpp",
                RedisTopology::Sentinel,
                false,
            ),
            (
                "rediss-sentinel://s1:26379?sentinelServiceName=smpp",
                RedisTopology::Sentinel,
                true,
            ),
        ];
        for (url, topology, tls) in cases {
            let redis = RedisSettings::parse(url, TlsFiles::default()).unwrap();
            assert_eq!(redis.topology, topology, "{url}");
            assert_eq!(redis.tls.is_some(), tls, "{url}");
            assert!(!redis.display.contains("pw"));
        }
    }

    #[test]
    fn bad_redis_settings_are_named() {
        let cases = [
            ("localhost:6379", TlsFiles::default(), env::REDIS_URL),
            ("http://h", TlsFiles::default(), env::REDIS_URL),
            (
                "redis-sentinel://s1:26379",
                TlsFiles::default(),
                env::REDIS_URL,
            ),
            (
                "redis://h1:1?node=h2:2",
                TlsFiles::default(),
                env::REDIS_URL,
            ),
            (
                "redis://h:6379",
                files(Some("/ca.pem"), None, None),
                env::REDIS_TLS_CA_FILE,
            ),
            (
                "rediss://h:6379",
                files(None, None, Some("/k")),
                env::REDIS_TLS_KEY_FILE,
            ),
        ];
        for (url, tls, variable) in cases {
            let err = RedisSettings::parse(url, tls).unwrap_err();
            assert_eq!(err.variable, variable, "{url}: {err}");
        }
    }
}
