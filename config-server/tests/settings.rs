//! Settings layering of the binary: defaults < `--config FILE` < environment
//! (an injected map) < flags; a Spring Cloud Config Server application.yml
//! read unchanged; the flat names and `CONFIG_SERVER_*` variables of
//! earlier releases; errors that name the file and key.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config_server::settings::spring::{Flags, load};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn reference_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spring-application.yml")
}

#[test]
fn a_spring_config_server_application_yml_is_read_unchanged() {
    let loaded = load(Some(&reference_file()), &env(&[]), &Flags::default()).unwrap();
    let s = loaded.settings;
    assert_eq!(s.port, 8889);
    assert_eq!(
        s.git_uri.as_deref(),
        Some("https://git.example.invalid/config-repo.git")
    );
    assert_eq!(s.search_paths, ["{application}", "shared"]);
    assert_eq!(s.default_label, "main");
    assert!(s.clone_on_start);
    assert_eq!(s.refresh_rate, 60);
    assert_eq!(s.git_username.as_deref(), Some("deploy"));
    assert_eq!(s.git_password.as_deref(), Some("token-123"));
    assert_eq!(s.native_dirs, [PathBuf::from("/srv/config/native")]);
    assert_eq!(s.encrypt_key.as_deref(), Some("my-symmetric-key"));
    assert_eq!(s.username.as_deref(), Some("config"));
    assert_eq!(s.password.as_deref(), Some("s3cret"));
    let repos: Vec<(&str, &[String], &str)> = s
        .repos
        .iter()
        .map(|r| (r.name.as_str(), r.pattern.as_slice(), r.uri.as_str()))
        .collect();
    assert_eq!(
        repos,
        [
            (
                "simple",
                &["simple".to_string()][..],
                "https://git.example.invalid/simple.git"
            ),
            (
                "special",
                &["special*/dev*".to_string(), "*special*/dev*".to_string()][..],
                "https://git.example.invalid/special.git"
            ),
            (
                "local",
                &["local*".to_string()][..],
                "file:///srv/config/local"
            ),
        ],
        "in file order, a bare URI's pattern is its name"
    );
    assert_eq!(s.repos[1].search_paths, ["{application}"]);
    assert_eq!(s.connection_limits.max_header_bytes, 16384);
    assert_eq!(
        s.connection_limits.header_read_timeout,
        Duration::from_secs(5)
    );
    assert_eq!(loaded.drain_timeout, Duration::from_secs(20));
    assert_eq!(
        s.connection_limits.drain_timeout,
        Duration::from_secs(10),
        "connections get no longer than the process"
    );
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "server.yml",
        "server:\n  port: 9001\nspring.cloud.config.server.git:\n  uri: file:///from-file\n  default-label: from-file\n  refresh-rate: 5\nencrypt:\n  key: from-file\n",
    );
    let vars = env(&[
        ("SERVER_PORT", "9002"),
        ("SPRING_CLOUD_CONFIG_SERVER_GIT_DEFAULTLABEL", "from-env"),
        ("ENCRYPT_KEY", "from-env"),
        ("SERVER_MAXCONNECTIONS", "77"),
        (
            "SPRING_CLOUD_CONFIG_SERVER_GIT_REPOS_TEAM_URI",
            "file:///team",
        ),
        (
            "SPRING_CLOUD_CONFIG_SERVER_GIT_REPOS_TEAM_PATTERN",
            "team-*",
        ),
    ]);
    let flags = Flags {
        port: Some(9003),
        refresh_rate: Some(7),
        drain_timeout: Some(Duration::from_secs(3)),
        ..Flags::default()
    };
    let loaded = load(Some(&file), &vars, &flags).unwrap();
    let s = &loaded.settings;
    assert_eq!(s.git_uri.as_deref(), Some("file:///from-file"), "file only");
    assert_eq!(s.default_label, "from-env", "environment over file");
    assert_eq!(s.encrypt_key.as_deref(), Some("from-env"), "ENCRYPT_KEY");
    assert_eq!(s.port, 9003, "flag over environment over file");
    assert_eq!(s.refresh_rate, 7, "flag over file");
    assert_eq!(s.connection_limits.max_connections, 77);
    assert_eq!(s.repos.len(), 1);
    assert_eq!(
        (s.repos[0].name.as_str(), s.repos[0].uri.as_str()),
        ("team", "file:///team")
    );
    assert_eq!(s.repos[0].pattern, ["team-*"]);
    assert_eq!(loaded.drain_timeout, Duration::from_secs(3));
    assert_eq!(s.connection_limits.drain_timeout, Duration::from_secs(3));
    assert_eq!(s.encrypt_salt, "deadbeef", "defaults fill the rest");
}

#[test]
fn flat_names_in_the_file_and_deprecated_variables_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "old.yml",
        "port: 9999\ndefault_label: trunk\nsearch_paths: [\"{application}\"]\nrefresh_rate: 5\nusername: u\npassword: p\nrepos:\n  - name: special\n    pattern: [\"special*\"]\n    uri: file:///special\n",
    );
    let vars = env(&[
        ("CONFIG_SERVER_GIT_URI", "file:///deprecated"),
        ("CONFIG_SERVER_DEFAULT_LABEL", "from-old-env"),
    ]);
    let flags = Flags {
        native_dirs: vec!["a".into(), "b".into()],
        ..Flags::default()
    };
    let s = load(Some(&file), &vars, &flags).unwrap().settings;
    assert_eq!(s.port, 9999);
    assert_eq!(s.search_paths, ["{application}"]);
    assert_eq!(s.refresh_rate, 5);
    assert_eq!(
        (s.username.as_deref(), s.password.as_deref()),
        (Some("u"), Some("p"))
    );
    assert_eq!(s.repos[0].name, "special");
    assert_eq!(s.git_uri.as_deref(), Some("file:///deprecated"));
    assert_eq!(s.default_label, "from-old-env", "old variable over file");
    assert_eq!(s.native_dirs, [PathBuf::from("a"), PathBuf::from("b")]);

    // The new name wins over the deprecated one.
    let vars = env(&[
        ("CONFIG_SERVER_GIT_URI", "file:///deprecated"),
        ("SPRING_CLOUD_CONFIG_SERVER_GIT_URI", "file:///new"),
    ]);
    let s = load(None, &vars, &Flags::default()).unwrap().settings;
    assert_eq!(s.git_uri.as_deref(), Some("file:///new"));
}

#[test]
fn the_native_profile_serves_search_locations_even_with_a_git_uri() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "native.yml",
        "spring:\n  profiles:\n    active: native\n  cloud.config.server:\n    git.uri: https://git.example.invalid/x.git\n    native.search-locations: file:./config-repo, /srv/other\n",
    );
    let s = load(Some(&file), &env(&[]), &Flags::default())
        .unwrap()
        .settings;
    assert_eq!(s.git_uri, None);
    assert_eq!(
        s.native_dirs,
        [PathBuf::from("./config-repo"), PathBuf::from("/srv/other")]
    );
}

#[test]
fn errors_name_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.yml",
        "spring:\n  cloud:\n    config:\n      server:\n        git:\n          refresh-rate: often\n",
    );
    let err = load(Some(&file), &env(&[]), &Flags::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(
        err.contains("spring.cloud.config.server.git.refresh-rate"),
        "{err}"
    );

    let flat = write(dir.path(), "flat.yml", "port: not-a-port\n");
    let err = load(Some(&flat), &env(&[]), &Flags::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&flat.display().to_string()), "{err}");
    assert!(err.contains("port"), "{err}");

    let err = load(None, &env(&[("SERVER_PORT", "eighty")]), &Flags::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("SERVER_PORT"), "{err}");
    assert!(err.contains("server.port"), "{err}");

    let classpath = write(
        dir.path(),
        "cp.yml",
        "spring.cloud.config.server.native.search-locations: classpath:/config\n",
    );
    let err = load(Some(&classpath), &env(&[]), &Flags::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("search-locations"), "{err}");
}

#[test]
fn request_limits_come_from_the_limits_section_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "server.yml",
        "limits:\n  max-monitor-paths: 7\n  maxProfilesPerRequest: 3\n",
    );
    let vars = env(&[("LIMITS_MAXAPPLICATIONSPERREQUEST", "4")]);
    let loaded = load(Some(&file), &vars, &Flags::default()).unwrap();
    let limits = &loaded.settings.request_limits;
    assert_eq!(limits.max_monitor_paths, 7);
    assert_eq!(limits.max_profiles_per_request, 3);
    assert_eq!(limits.max_applications_per_request, 4);
    assert_eq!(
        limits.max_crypto_body_bytes,
        64 << 10,
        "defaults fill the rest"
    );
}
