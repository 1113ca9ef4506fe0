use super::*;

fn rule(cidr: &str, name: &str) -> PeerRule {
    PeerRule {
        cidr: cidr.parse().unwrap(),
        name: name.into(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn an_allowlist_names_its_peers_and_refuses_the_rest() {
    let g = Arc::new(Gate::new(
        vec![rule("127.0.0.2/32", "edge-a"), rule("10.0.0.0/8", "edge-b")],
        vec![],
        Limits::default(),
    ));
    let a = g.admit(Port::Control, ip("127.0.0.2")).unwrap();
    assert_eq!(a.peer.name.as_deref(), Some("edge-a"));
    let b = g.admit(Port::Data, ip("::ffff:10.1.2.3")).unwrap();
    assert_eq!(b.peer.name.as_deref(), Some("edge-b"));
    assert_eq!(b.peer.ip, ip("10.1.2.3"));
    for port in [Port::Control, Port::Data] {
        assert_eq!(
            g.admit(port, ip("127.0.0.3")).unwrap_err(),
            Refusal::NotAllowed
        );
    }
    // The live port is governed by the viewer ACL, not the sender allowlist.
    assert!(g.admit(Port::Live, ip("127.0.0.3")).is_ok());
    let counts = g.refusals.snapshot();
    assert!(
        counts.contains(&("control", "not_allowed", 1)),
        "{counts:?}"
    );
    assert!(counts.contains(&("data", "not_allowed", 1)), "{counts:?}");
}

#[test]
fn connection_limits_count_open_connections_only() {
    let limits = Limits {
        max_connections: 3,
        max_connections_per_peer: 2,
        ..Limits::default()
    };
    let g = Arc::new(Gate::new(vec![], vec![], limits));
    let a1 = g.admit(Port::Control, ip("127.0.0.2")).unwrap();
    let _a2 = g.admit(Port::Data, ip("127.0.0.2")).unwrap();
    assert_eq!(
        g.admit(Port::Data, ip("127.0.0.2")).unwrap_err(),
        Refusal::TooManyFromPeer
    );
    let _b = g.admit(Port::Control, ip("127.0.0.3")).unwrap();
    assert_eq!(
        g.admit(Port::Control, ip("127.0.0.4")).unwrap_err(),
        Refusal::TooManyConnections
    );
    drop(a1);
    assert_eq!(g.open(), 2);
    assert!(g.admit(Port::Control, ip("127.0.0.2")).is_ok());
}

#[test]
fn viewers_see_what_a_rule_allows() {
    let viewers = vec![
        ViewerRule {
            cidr: Some("127.0.0.0/8".parse().unwrap()),
            certificates: vec![],
            peers: vec!["edge-*".into()],
            sessions: vec!["prod-*".into()],
        },
        ViewerRule {
            cidr: Some("127.0.0.5/32".parse().unwrap()),
            certificates: vec![],
            peers: vec!["*".into()],
            sessions: vec!["*".into()],
        },
        ViewerRule {
            cidr: None,
            certificates: vec!["ops-*".into()],
            peers: vec!["*".into()],
            sessions: vec!["ops".into()],
        },
    ];
    let g = Gate::new(vec![], viewers, Limits::default());
    let s = g.viewer_scope(ip("127.0.0.2"), None).unwrap();
    assert!(s.allows("edge-a", "prod-1"));
    assert!(!s.allows("edge-a", "test-1"));
    assert!(!s.allows("core", "prod-1"));
    assert!(g
        .viewer_scope(ip("127.0.0.5"), None)
        .unwrap()
        .allows("core", "x"));
    assert!(g.viewer_scope(ip("10.0.0.1"), None).unwrap().is_empty());
    let ops = g.viewer_scope(ip("10.0.0.1"), Some("ops-1")).unwrap();
    assert!(ops.allows("core", "ops") && !ops.allows("core", "x"));
    assert!(g
        .viewer_scope(ip("10.0.0.1"), Some("dev-1"))
        .unwrap()
        .is_empty());
    assert!(Gate::new(vec![], vec![], Limits::default())
        .viewer_scope(ip("10.0.0.1"), None)
        .is_none());
}

#[test]
fn refusal_lines_are_rate_limited() {
    let r = refusals::Refusals::default();
    assert_eq!(r.admit_line("x"), Some(0));
    assert_eq!(r.admit_line("x"), None);
    assert_eq!(r.admit_line("x"), None);
    assert_eq!(r.admit_line("y"), Some(0));
}
