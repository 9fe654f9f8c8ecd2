//! The commands the documentation shows work as written: every `oytel-server` command in a
//! shell block of README.md and docs/*.md is accepted by the real binary (its subcommands and
//! flags, checked with `--help` after them), and every `curl` names a route and method of the
//! real API (the spec the server serves).

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_oytel-server");

/// The shell commands of every ```sh block, continuation lines joined, comments dropped.
fn documented_commands() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut commands = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let mut in_sh = false;
        let mut pending = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with("```") {
                in_sh = !in_sh && trimmed == "```sh";
                continue;
            }
            if !in_sh || trimmed.starts_with('#') {
                continue;
            }
            let code = match trimmed.find("  #") {
                Some(at) => trimmed[..at].trim_end(),
                None => trimmed,
            };
            match code.strip_suffix('\\') {
                Some(head) => pending.push_str(head),
                None => {
                    pending.push_str(code);
                    // A quoted argument may run on over several lines.
                    let open = |q: char| pending.chars().filter(|c| *c == q).count() % 2 == 1;
                    if open('\'') || open('"') {
                        pending.push(' ');
                        continue;
                    }
                    if !pending.trim().is_empty() {
                        commands.push((name.clone(), pending.trim().to_owned()));
                    }
                    pending.clear();
                }
            }
        }
    }
    commands
}

/// Words of a command line, as a shell splits them (quotes kept together), with optional
/// `[…]` brackets opened.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
        .into_iter()
        .map(|w| w.replace(['[', ']'], ""))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether the spec has `method` on a path that `path` (with `$VAR`, `…` or `$(…)` where a
/// parameter goes) names.
fn spec_has(spec: &serde_json::Value, method: &str, path: &str) -> bool {
    let wanted: Vec<&str> = path.trim_matches('/').split('/').collect();
    spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .any(|(template, item)| {
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            parts.len() == wanted.len()
                && parts.iter().zip(&wanted).all(|(t, w)| {
                    t == w || (t.starts_with('{') && (w.contains('$') || w.contains('…')))
                })
                && item.get(method).is_some()
        })
}

#[test]
fn every_documented_command_is_accepted_as_written() {
    let spec = oytel_server::openapi::to_json(&oytel_server::openapi::spec()).unwrap();
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let (mut cli, mut http) = (0, 0);
    for (file, line) in documented_commands() {
        let words = words(&line);
        let Some(first) = words.first() else { continue };
        if first.ends_with("oytel-server") || (first == "cargo" && line.contains("-p oytel-server"))
        {
            // Placeholders (`ptn_…`) stand for ids.
            let args: Vec<String> = match words.iter().position(|w| w == "--") {
                Some(at) => words[at + 1..].to_vec(),
                None if first == "cargo" => Vec::new(),
                None => words[1..].to_vec(),
            }
            .into_iter()
            .map(|w| w.replace('…', "x"))
            .collect();
            let output = Command::new(BIN)
                .args(&args)
                .arg("--help")
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{file}: `{line}` is refused: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            cli += 1;
        } else if first == "curl" {
            // The path after the host, whichever host the page uses.
            let url = words
                .iter()
                .find_map(|w| {
                    let after = &w[w.find("://")? + 3..];
                    Some(&after[after.find('/')?..])
                })
                .unwrap_or_else(|| panic!("{file}: `{line}` names no URL"));
            let path = url
                .split(|c: char| c == '?' || c == '|' || c == ')' || c == '"' || c.is_whitespace())
                .next()
                .unwrap();
            let method = match words.iter().position(|w| w == "-X") {
                Some(at) => words[at + 1].to_lowercase(),
                None if words.iter().any(|w| w == "-d") => "post".into(),
                None => "get".into(),
            };
            if let Some(function) = path.strip_prefix("/gsma/rsp2/es2plus/") {
                // A call to an SM-DP+ (docs/smdp.md): an ES2+ function, always a POST.
                assert!(
                    oytel_es2plus::Function::from_name(function).is_some() && method == "post",
                    "{file}: `{line}`: {method} {path} is no ES2+ function"
                );
            } else if path == "/metrics" {
                // The metrics listener (docs/observability.md): a GET of its one route.
                assert_eq!(
                    method, "get",
                    "{file}: `{line}`: the metrics are read with GET"
                );
            } else {
                assert!(
                    spec_has(&spec, &method, path),
                    "{file}: `{line}`: no {method} {path} in the API"
                );
            }
            http += 1;
        }
    }
    println!("documented commands checked: {cli} admin commands, {http} API calls");
    assert!(
        cli >= 20 && http >= 10,
        "{cli} commands, {http} calls: the parser lost them"
    );
}
