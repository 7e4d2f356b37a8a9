//! Secrets: the admin token, the public user salt, the HMAC re-keying key and the shortcut
//! ingest keys. Each comes from its environment variable; an unset one is generated on first
//! start from the operating system's random source (the server refuses to start when that
//! fails), kept in `<data_dir>/secrets.toml` (mode 0600, in a data dir of mode 0700) and
//! printed once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::{Config, KeyConfig, KeyKind};

/// The file generated secrets are kept in, inside the data dir.
pub(crate) const SECRETS_FILE: &str = "secrets.toml";

/// Secrets resolved from env, the secrets file, or generated now. No `Debug`: everything
/// in it is secret.
#[derive(Clone)]
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

/// Where random bytes come from: the OS (`getrandom`), or a failing source in tests.
type RandomSource = fn(&mut [u8]) -> Result<(), String>;

fn os_random(bytes: &mut [u8]) -> Result<(), String> {
    getrandom::fill(bytes).map_err(|e| e.to_string())
}

/// Resolves every secret for `config`, generating and persisting missing ones. Creates the
/// data dir (0700), or takes group and other access away from an existing one.
pub(crate) fn resolve(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Secrets> {
    resolve_with(config, env, os_random)
}

fn resolve_with(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    random: RandomSource,
) -> Result<Secrets> {
    let dir = &config.data_dir;
    faultline_store::create_private_dir_all(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    match faultline_store::restrict_dir(dir) {
        Ok(true) => tracing::info!(
            data_dir = %dir.display(),
            "took group and other access away from the data dir (now 0700)"
        ),
        Ok(false) => {}
        Err(e) => tracing::warn!(
            data_dir = %dir.display(),
            error = %e,
            "cannot restrict the data dir to its owner: make it 0700 by hand"
        ),
    }
    let file = dir.join(SECRETS_FILE);
    let mut stored = read_stored(&file)?;
    let mut generated = Vec::new();
    let mut changed = false;

    let mut get = |var: &str,
                   field: &str,
                   label: &str,
                   make: &dyn Fn() -> Result<String>|
     -> Result<String> {
        if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
            return Ok(v.trim().to_owned());
        }
        if let Some(v) = stored.get(field) {
            return Ok(v.clone());
        }
        let v = make().with_context(|| format!("cannot generate {var}: set it instead"))?;
        stored.insert(field.to_owned(), v.clone());
        generated.push((label.to_owned(), v.clone()));
        changed = true;
        Ok(v)
    };
    let hex = |n: usize| random_hex(n, random);

    let admin_token = get(
        "FAULTLINE_ADMIN_TOKEN",
        "admin_token",
        "admin token",
        &|| Ok(format!("fl_admin_{}", hex(16)?)),
    )?;
    let user_salt = get(
        "FAULTLINE_USER_SALT",
        "user_salt",
        "user salt (public)",
        &|| hex(16),
    )?;
    let hmac_key = get("FAULTLINE_HMAC_KEY", "hmac_key", "", &|| hex(32))?;

    // The shortcut keys: honored whenever set; generated only for a config without keys,
    // so a one-line start works and a configured deployment gets no surprise credentials.
    let mut shortcut_keys = Vec::new();
    let generate_keys = config.keys.is_empty();
    let ingest = if generate_keys {
        Some(get(
            "FAULTLINE_INGEST_KEY",
            "ingest_key",
            "secret ingest key (every service)",
            &|| Ok(format!("sk_{}", hex(16)?)),
        )?)
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
            daily_quota: None,
            sourcemaps: false,
        });
    }
    let public = if generate_keys {
        Some(get(
            "FAULTLINE_PUBLIC_KEY",
            "public_key",
            "public key (service ui)",
            &|| Ok(format!("pk_{}", hex(12)?)),
        )?)
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
            daily_quota: None,
            sourcemaps: false,
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
        // A leftover temporary keeps its mode when opened again: start from a new file.
        let _ = std::fs::remove_file(&tmp);
        let mut f = faultline_store::create_private_file(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, file).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}

/// `n` random bytes from `random` as lowercase hex. A failing source is an error: a secret
/// made of anything guessable (a time-based UUID was the fallback) is no secret.
fn random_hex(n: usize, random: RandomSource) -> Result<String> {
    let mut bytes = vec![0u8; n];
    random(&mut bytes).map_err(|e| {
        anyhow::anyhow!(
            "the operating system's random source failed ({e}); refusing to make up a secret \
             without it"
        )
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards guessable secrets: when the OS random source failed, secrets were made of a
    /// UUIDv7 (a timestamp and a few random bits); now the server refuses to start, saying
    /// why and what to do.
    #[test]
    fn a_failing_random_source_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        fn broken(_: &mut [u8]) -> Result<(), String> {
            Err("getrandom: no entropy".into())
        }
        let err = resolve_with(&config, &|_| None, broken).err().unwrap();
        let err = format!("{err:#}");
        assert!(
            err.contains("random source failed")
                && err.contains("no entropy")
                && err.contains("FAULTLINE_ADMIN_TOKEN"),
            "{err}"
        );
        assert!(!config.data_dir.join(SECRETS_FILE).exists());
        // With every secret given, nothing needs generating, and it starts.
        let given = |k: &str| {
            [
                "FAULTLINE_ADMIN_TOKEN",
                "FAULTLINE_USER_SALT",
                "FAULTLINE_HMAC_KEY",
                "FAULTLINE_INGEST_KEY",
                "FAULTLINE_PUBLIC_KEY",
            ]
            .contains(&k)
            .then(|| format!("{k}-value"))
        };
        assert!(resolve_with(&config, &given, broken).is_ok());
    }

    /// Guards a data dir readable by every user: it was created 0755 (and one made by an
    /// older version stays so); now 0700 either way.
    #[cfg(unix)]
    #[test]
    fn the_data_dir_is_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let resolve_in = |data_dir: &Path| {
            let config = Config {
                data_dir: data_dir.to_path_buf(),
                ..Config::default()
            };
            resolve(&config, &|_| None).unwrap();
        };
        let new = tmp.path().join("new/data");
        resolve_in(&new);
        assert_eq!(mode(&new), 0o700);
        assert_eq!(mode(&new.join(SECRETS_FILE)), 0o600);
        let old = tmp.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        resolve_in(&old);
        assert_eq!(mode(&old), 0o700);
    }

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
