//! Secrets: the admin token, the public user salt, the HMAC re-keying key and the shortcut
//! ingest keys. Each comes from its environment variable; an unset one is generated on first
//! start, kept in `<data_dir>/secrets.toml` (mode 0600) and printed once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::{Config, KeyConfig, KeyKind};

/// The file generated secrets are kept in, inside the data dir.
pub(crate) const SECRETS_FILE: &str = "secrets.toml";

/// Secrets resolved from env, the secrets file, or generated now.
#[derive(Debug, Clone)]
pub(crate) struct Secrets {
    /// Needed to read the API and the dashboard.
    pub admin_token: String,
    /// The public salt clients anonymize user ids with.
    pub user_salt: String,
    /// The server's secret for re-keying `meta.user`.
    pub hmac_key: String,
    /// Keys from the `FAULTLINE_INGEST_KEY` / `FAULTLINE_PUBLIC_KEY` shortcuts (or generated
    /// for them when the config has no keys), already in config form.
    pub shortcut_keys: Vec<KeyConfig>,
    /// What was generated on this start, for printing once: (label, value).
    pub generated: Vec<(String, String)>,
    /// Where generated secrets are kept.
    pub file: PathBuf,
}

/// Origins the generated public key allows: the server itself and the Vite dev server.
fn default_origins(config: &Config) -> Vec<String> {
    let port = config.listen.port();
    let mut origins = vec![
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        "http://localhost:5173".to_owned(),
        "http://127.0.0.1:5173".to_owned(),
    ];
    origins.dedup();
    origins
}

/// Resolves every secret for `config`, generating and persisting missing ones.
pub(crate) fn resolve(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Secrets> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let file = config.data_dir.join(SECRETS_FILE);
    let mut stored = read_stored(&file)?;
    let mut generated = Vec::new();
    let mut changed = false;

    let mut get = |var: &str, field: &str, label: &str, make: &dyn Fn() -> String| -> String {
        if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
            return v.trim().to_owned();
        }
        if let Some(v) = stored.get(field) {
            return v.clone();
        }
        let v = make();
        stored.insert(field.to_owned(), v.clone());
        generated.push((label.to_owned(), v.clone()));
        changed = true;
        v
    };

    let admin_token = get(
        "FAULTLINE_ADMIN_TOKEN",
        "admin_token",
        "admin token",
        &|| format!("fl_admin_{}", random_hex(16)),
    );
    let user_salt = get(
        "FAULTLINE_USER_SALT",
        "user_salt",
        "user salt (public)",
        &|| random_hex(16),
    );
    let hmac_key = get("FAULTLINE_HMAC_KEY", "hmac_key", "", &|| random_hex(32));

    // The shortcut keys: honored whenever set; generated only for a config without keys,
    // so a one-line start works and a configured deployment gets no surprise credentials.
    let mut shortcut_keys = Vec::new();
    let generate_keys = config.keys.is_empty();
    let ingest = if generate_keys {
        Some(get(
            "FAULTLINE_INGEST_KEY",
            "ingest_key",
            "secret ingest key (every service)",
            &|| format!("sk_{}", random_hex(16)),
        ))
    } else {
        env("FAULTLINE_INGEST_KEY")
    };
    if let Some(key) = ingest {
        shortcut_keys.push(KeyConfig {
            name: "env-ingest".into(),
            kind: KeyKind::Secret,
            key: Some(key),
            key_env: None,
            key_file: None,
            services: vec!["*".into()],
            origins: Vec::new(),
            rate_limit: None,
        });
    }
    let public = if generate_keys {
        Some(get(
            "FAULTLINE_PUBLIC_KEY",
            "public_key",
            "public key (service ui)",
            &|| format!("pk_{}", random_hex(12)),
        ))
    } else {
        env("FAULTLINE_PUBLIC_KEY")
    };
    if let Some(key) = public {
        let origins = env("FAULTLINE_CORS_ORIGINS")
            .map(|s| {
                s.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_else(|| default_origins(config));
        shortcut_keys.push(KeyConfig {
            name: "env-public".into(),
            kind: KeyKind::Public,
            key: Some(key),
            key_env: None,
            key_file: None,
            services: vec!["ui".into()],
            origins,
            rate_limit: None,
        });
    }

    if changed {
        write_stored(&file, &stored)?;
    }
    // The HMAC key is the server's own secret: nobody needs to see it.
    generated.retain(|(label, _)| !label.is_empty());
    Ok(Secrets {
        admin_token,
        user_salt,
        hmac_key,
        shortcut_keys,
        generated,
        file,
    })
}

/// Reads a configured key's secret from wherever the config says it lives.
pub(crate) fn key_value(key: &KeyConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    if let Some(k) = &key.key {
        return Ok(k.clone());
    }
    if let Some(var) = &key.key_env {
        return env(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .with_context(|| {
                format!(
                    "key {:?}: environment variable {var} is not set (key_env)",
                    key.name
                )
            });
    }
    if let Some(path) = &key.key_file {
        let v = std::fs::read_to_string(path).with_context(|| {
            format!(
                "key {:?}: cannot read key_file {}",
                key.name,
                path.display()
            )
        })?;
        return Ok(v.trim().to_owned());
    }
    anyhow::bail!("key {:?}: no key, key_env or key_file", key.name)
}

fn read_stored(file: &Path) -> Result<BTreeMap<String, String>> {
    match std::fs::read_to_string(file) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("{} is not valid: fix or delete it", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

fn write_stored(file: &Path, values: &BTreeMap<String, String>) -> Result<()> {
    let mut text = String::from(
        "# Generated by faultline on first start. Keep this file private.\n\
         # Environment variables (FAULTLINE_ADMIN_TOKEN, ...) take precedence.\n",
    );
    text.push_str(&toml::to_string(values).context("cannot encode secrets")?);
    let tmp = file.with_extension("toml.tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, file).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}

/// `n` random bytes as lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // The OS random source failing is not recoverable for a server that must mint secrets.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = uuid::Uuid::now_v7().as_bytes().repeat(n.div_ceil(16));
        bytes.truncate(n);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_and_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let first = resolve(&config, &|_| None).unwrap();
        assert_eq!(first.generated.len(), 4, "{:?}", first.generated);
        assert_eq!(first.shortcut_keys.len(), 2);
        let second = resolve(&config, &|_| None).unwrap();
        assert!(second.generated.is_empty(), "printed only once");
        assert_eq!(second.admin_token, first.admin_token);
        assert_eq!(second.hmac_key, first.hmac_key);
        let env = |k: &str| (k == "FAULTLINE_ADMIN_TOKEN").then(|| "from-env".to_owned());
        assert_eq!(resolve(&config, &env).unwrap().admin_token, "from-env");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
