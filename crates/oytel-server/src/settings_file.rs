//! The settings file (`--config FILE` / `OYTEL_CONFIG`): `NAME = value` lines with the
//! environment variables' names, applied as defaults before the arguments are read, so that
//! `serve` and the admin commands share one setting.

use crate::Cli;

/// The settings file named by `--config` or `OYTEL_CONFIG`, if any.
pub(crate) fn config_path() -> Option<std::path::PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    let flag = args.iter().enumerate().find_map(|(i, arg)| {
        arg.strip_prefix("--config=")
            .map(str::to_owned)
            .or_else(|| {
                (arg == "--config")
                    .then(|| args.get(i + 1).cloned())
                    .flatten()
            })
    });
    flag.or_else(|| std::env::var("OYTEL_CONFIG").ok())
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from)
}

/// Reads a settings file: `NAME = value` lines (a TOML subset: strings in double quotes,
/// numbers, `true`/`false`; `#` comments), each NAME one of `known`. Errors name the line.
pub(crate) fn read_config(text: &str, known: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut settings = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("line {}", number + 1);
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| format!("{}: expected `NAME = value`", at()))?;
        let name = name.trim();
        if !known.iter().any(|k| k == name) {
            return Err(format!(
                "{}: `{name}` is not a setting (the names are the environment variables \
                 of --help, such as OYTEL_DATABASE_URL)",
                at()
            ));
        }
        let value = value.trim();
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(quoted) => quoted.to_owned(),
            None if !value.is_empty() && !value.contains([' ', '"', '#']) => value.to_owned(),
            None => {
                return Err(format!(
                    "{}: put the value of {name} in double quotes",
                    at()
                ))
            }
        };
        settings.push((name.to_owned(), value));
    }
    Ok(settings)
}

/// Applies the settings file, if one is named, as defaults: a setting already in the
/// environment (or given as a flag, which clap prefers) wins.
pub(crate) fn apply_config() -> Result<(), String> {
    let Some(path) = config_path() else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the settings file {}: {e}", path.display()))?;
    let mut known: Vec<String> = Vec::new();
    let mut commands = vec![<Cli as clap::CommandFactory>::command()];
    while let Some(command) = commands.pop() {
        for arg in command.get_arguments() {
            if let Some(name) = arg.get_env().and_then(|n| n.to_str()) {
                known.push(name.to_owned());
            }
        }
        commands.extend(command.get_subcommands().cloned());
    }
    known.push("OYTEL_LOG".into());
    let settings = read_config(&text, &known).map_err(|e| format!("{}: {e}", path.display()))?;
    for (name, value) in settings {
        if std::env::var_os(&name).is_none() {
            // Still one thread: nothing reads the environment concurrently.
            std::env::set_var(name, value);
        }
    }
    Ok(())
}
