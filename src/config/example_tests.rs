//! `config.example.toml` lists every key the configuration has: each field of [`Config`]
//! (read from its `Debug` form, so a new field is seen without a list to keep) must be
//! written in the example, in its section. `example_file_is_the_defaults` cannot see a
//! missing key (the default fills it in); this test can.

use std::collections::BTreeSet;

use super::{Config, EXAMPLE};

/// The keys a `Debug` of [`Config`] shows: top-level fields, and the fields of each section
/// struct as `section.key`. Fields held under another name than their key (`x_written`, read
/// from key `x`) count under the key; fields never read from the file are left out.
fn keys_of_config() -> BTreeSet<String> {
    let text = format!("{:#?}", Config::from_toml("").expect("empty config"));
    let mut keys = BTreeSet::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        let depth = line.len() - line.trim_start().len();
        let Some((name, value)) = line.trim_start().split_once(": ") else { continue };
        let name = name.strip_suffix("_written").unwrap_or(name);
        match depth {
            4 if value.ends_with(" {") && value.contains("Config") => {
                section = Some(name.to_string());
            }
            4 => {
                section = None;
                if !matches!(name, "apps" | "source") {
                    keys.insert(name.to_string());
                }
            }
            8 => {
                if let Some(section) = &section {
                    keys.insert(format!("{section}.{name}"));
                }
            }
            _ => {}
        }
    }
    keys
}

/// The keys written in the example (`key = …` lines, also commented ones), as
/// `section.key` under their `[section]`.
fn keys_of_example() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut section = String::new();
    for line in EXAMPLE.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim_matches(['[', ']']).to_string();
            continue;
        }
        let written = line.trim_start_matches('#').trim_start();
        let Some((key, _)) = written.split_once(" = ") else { continue };
        if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            keys.insert(if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            });
        }
    }
    keys
}

#[test]
fn the_example_lists_every_key() {
    let config = keys_of_config();
    assert!(config.len() > 40, "the Debug form was read: {config:?}");
    assert!(config.contains("retention.payload_secs") && config.contains("listen"), "{config:?}");
    let example = keys_of_example();
    let missing: Vec<&String> = config.difference(&example).collect();
    assert!(missing.is_empty(), "keys config.example.toml does not list: {missing:?}");
}
