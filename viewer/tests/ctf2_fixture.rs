//! The viewer's offline commands on a CTF 2 trace recorded with the real LTTng 2.15 tools: they
//! read its JSON metadata (clock, environment) and print what they print for CTF 1.8, with
//! times that agree with what babeltrace2 2.1 printed of the same trace.

mod support;

use support::*;

/// Nanoseconds since midnight UTC of the `[HH:MM:SS.nnnnnnnnn]` time at the start of a
/// babeltrace2 line, or of the `THH:MM:SS.nnnnnnnnnZ` part of an RFC 3339 time.
fn ns_of_day(hms: &str) -> u64 {
    let (h, rest) = hms.split_once(':').unwrap();
    let (m, rest) = rest.split_once(':').unwrap();
    let (s, ns) = rest.split_once('.').unwrap();
    let ns = &ns[..9];
    ((h.parse::<u64>().unwrap() * 60 + m.parse::<u64>().unwrap()) * 60 + s.parse::<u64>().unwrap())
        * 1_000_000_000
        + ns.parse::<u64>().unwrap()
}

/// The first and last event times babeltrace2 2.1 printed.
fn babeltrace_span() -> (u64, u64) {
    let text = std::fs::read_to_string(ctf2_fixture().join("babeltrace-postmortem.txt")).unwrap();
    let times: Vec<u64> = text
        .lines()
        .map(|l| ns_of_day(&l[1..l.find(']').unwrap()]))
        .collect();
    assert!(times.len() > 10, "{} events", times.len());
    (*times.iter().min().unwrap(), *times.iter().max().unwrap())
}

/// Every `[BEGIN .. END]` RFC 3339 range of the output, as nanoseconds of the day.
fn ranges(out: &str) -> Vec<(u64, u64)> {
    out.lines()
        .filter_map(|l| {
            let open = l.find('[')?;
            let inner = &l[open + 1..open + l[open..].find(']')?];
            let (a, b) = inner.split_once(" .. ")?;
            let t = |s: &str| ns_of_day(&s[s.find('T').unwrap() + 1..]);
            Some((t(a), t(b)))
        })
        .collect()
}

fn trace() -> String {
    ctf2_fixture().join("trace").to_str().unwrap().to_owned()
}

fn assert_ranges_cover_babeltrace(out: &str) {
    let r = ranges(out);
    assert_eq!(r.len(), 2, "one range per stream:\n{out}");
    let (first, last) = babeltrace_span();
    let begin = r.iter().map(|x| x.0).min().unwrap();
    let end = r.iter().map(|x| x.1).max().unwrap();
    assert!(
        begin <= first && last <= end,
        "packets [{begin}, {end}] do not hold babeltrace2's events [{first}, {last}]:\n{out}"
    );
}

#[test]
fn check_finds_the_ctf2_fixture_clean() {
    let o = viewer(&["check", &trace()]);
    assert_exit_0(&o, "check");
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("2 stream(s), 2 index entries: clean"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn index_reads_the_json_clock_and_dates_packets_like_babeltrace() {
    let o = viewer(&["index", &trace()]);
    assert_exit_0(&o, "index");
    let out = stdout(&o);
    assert!(
        out.lines()
            .next()
            .unwrap()
            .contains("clock monotonic: 1000000000 Hz"),
        "{out}"
    );
    assert_ranges_cover_babeltrace(&out);
}

#[test]
fn tail_dates_packets_like_babeltrace() {
    let o = viewer(&["tail", &trace(), "--until-idle", "1"]);
    assert_exit_0(&o, "tail");
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_ranges_cover_babeltrace(&out);
}

#[test]
fn damaged_json_metadata_is_reported_by_check() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("trace");
    copy_tree(&ctf2_fixture().join("trace"), &root);
    let md = root.join(CTF2_TRACE_REL).join("metadata");
    let text = std::fs::read_to_string(&md).unwrap();
    let damaged = text.replacen("\"frequency\": 1000000000", "\"frequency\": \"fast\"", 1);
    assert_ne!(damaged, text, "the fixture's clock class was not found");
    std::fs::write(&md, damaged).unwrap();
    let o = viewer(&["check", root.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("metadata: offset 0: metadata unreadable: CTF 2 metadata record"),
        "{out}"
    );
}
