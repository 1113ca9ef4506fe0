//! lttng-relayd's INI daemon configuration (`-f, --config FILE` with a `[relayd]` section), read
//! as lttng-relayd reads it: each `NAME = VALUE` of the `[relayd]` section is the long option
//! `--NAME=VALUE`; an option without argument is set when VALUE is true (`yes`, `true`, `on` or
//! a non-zero number) and skipped when false; `verbose = N` sets the verbosity to N; `help`,
//! `config` and `version` are ignored; other sections are ignored; an unknown name is logged and
//! skipped. Command-line options win over the file (they come after it).

/// Long options of lttng-relayd that take no argument.
const FLAGS: [&str; 8] = [
    "daemonize",
    "background",
    "group-output-by-session",
    "group-output-by-host",
    "disallow-clear",
    "dynamic-port-allocation",
    "sig-parent",
    "verbose",
];

/// Long options of lttng-relayd that take an argument.
const VALUED: [&str; 8] = [
    "control-port",
    "data-port",
    "live-port",
    "pid-file",
    "group",
    "fd-pool-size",
    "output",
    "working-directory",
];

/// Whether `text` is an lttng daemon configuration with a `[relayd]` section (rather than
/// trelay's TOML settings).
pub fn is_lttng_config(text: &str) -> bool {
    text.lines().any(|l| section(l) == Some("relayd"))
}

fn section(line: &str) -> Option<&str> {
    let l = line.trim();
    l.strip_prefix('[')?.strip_suffix(']').map(str::trim)
}

/// lttng's boolean reading of a configuration value: `Some(n)` for a number or yes/true/on (1)
/// and no/false/off (0), `None` when it is neither.
fn parse_value(v: &str) -> Option<u64> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" => Some(1),
        "no" | "false" | "off" => Some(0),
        n => n.parse().ok(),
    }
}

/// The command-line arguments equivalent to the `[relayd]` section of `text`, and warnings for
/// the entries skipped.
pub fn to_args(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut args, mut warnings) = (Vec::new(), Vec::new());
    let mut in_relayd = false;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with(';') || l.starts_with('#') {
            continue;
        }
        if let Some(s) = section(l) {
            in_relayd = s == "relayd";
            continue;
        }
        if !in_relayd {
            continue;
        }
        let Some((name, value)) = l.split_once('=').or_else(|| l.split_once(':')) else {
            warnings.push(format!("unreadable configuration line \"{l}\""));
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if matches!(name, "help" | "config" | "version") {
            continue;
        }
        if FLAGS.contains(&name) {
            match parse_value(value) {
                Some(0) => {}
                Some(n) if name == "verbose" => {
                    args.extend((0..n.min(3)).map(|_| "--verbose".to_owned()));
                }
                Some(_) => args.push(format!("--{name}")),
                None => warnings.push(format!(
                    "invalid configuration value \"{value}\" for option {name}"
                )),
            }
        } else if VALUED.contains(&name) {
            args.push(format!("--{name}={value}"));
        } else {
            warnings.push(format!(
                "unrecognized option \"{name}\" in daemon configuration file"
            ));
        }
    }
    (args, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relayd_section_becomes_options() {
        let text = "; comment\n[sessiond]\noutput = /no\n[relayd]\noutput = /tmp/out\n\
                    daemonize = off\nbackground = yes\nverbose = 2\nsig-parent: 1\nbogus = 1\n\
                    disallow-clear = maybe\nhelp = 1\n";
        assert!(is_lttng_config(text));
        assert!(!is_lttng_config("durability = \"none\"\n[live]\n"));
        let (args, warnings) = to_args(text);
        assert_eq!(
            args,
            [
                "--output=/tmp/out",
                "--background",
                "--verbose",
                "--verbose",
                "--sig-parent"
            ]
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("bogus") && warnings[1].contains("maybe"));
    }
}
