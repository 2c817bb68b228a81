//! Where an app listens when it does not answer at its URL (it ignored `PORT`, say): its
//! TCP listeners from `/proc` (leaving out its inspector) and the ports its own output
//! names, so the error can say which port it opened and the `--url` to give.

use std::collections::VecDeque;
use std::sync::Arc;

/// Where an app that does not answer at its URL listens instead.
#[derive(Clone)]
pub(crate) struct ListensElsewhere {
    /// The app's node process.
    pub(crate) pid: u32,
    /// Its inspector's port (not the app's).
    pub(crate) inspector_port: Option<u16>,
    /// The port of the URL polled.
    pub(crate) url_port: Option<u16>,
    /// Its last output lines about listening.
    pub(crate) said: Arc<std::sync::Mutex<VecDeque<String>>>,
    /// The path (and query) of the URL polled, kept in the URL suggested (`/api/orders`).
    pub(crate) url_path: String,
}

impl ListensElsewhere {
    /// What shows the app listens elsewhere (its TCP listeners in `/proc`, its output)
    /// and the URL to use instead; None when it listens on the URL's port, or nothing
    /// names another port.
    pub(crate) fn find(&self) -> Option<(String, String)> {
        let said: Vec<String> = self
            .said
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let listening = leakhound_inspector::proc::listening_addrs(self.pid).unwrap_or_default();
        elsewhere(&listening, self.inspector_port, self.url_port, &said)
            .map(|(evidence, url)| (evidence, format!("{}{}", url.trim_end_matches('/'), self.url_path)))
    }
}

/// The path and query of `url` (`http://host:3000/api/x?y` → `/api/x?y`), `/` when it has
/// none.
pub(crate) fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => rest[i..].to_owned(),
        Some(i) => format!("/{}", &rest[i..]),
        None => "/".to_owned(),
    }
}

/// The port of `url` (`http://host:PORT/…`, `ws://host:PORT/…`), or 80 for a plain
/// `http://host/`.
pub(crate) fn port_of(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => port.parse().ok(),
        _ => url.starts_with("http://").then_some(80),
    }
}

/// The port of an `http://` URL whose host is loopback (`127.0.0.1`, `localhost`,
/// `[::1]`) and names its port: where an app leakhound starts should listen.
pub(crate) fn loopback_port_of(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = authority.rsplit_once(':')?;
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        .then(|| port.parse().ok())
        .flatten()
}

/// See [`ListensElsewhere::find`]: `listening` are the app's listeners, `said` its lines
/// about listening.
fn elsewhere(
    listening: &std::collections::BTreeSet<std::net::SocketAddr>,
    inspector_port: Option<u16>,
    url_port: Option<u16>,
    said: &[String],
) -> Option<(String, String)> {
    if url_port.is_some_and(|p| listening.iter().any(|a| a.port() == p)) {
        return None;
    }
    let other = |p: u16| Some(p) != inspector_port && Some(p) != url_port;
    let addrs: Vec<&std::net::SocketAddr> = listening.iter().filter(|a| other(a.port())).collect();
    let told: Vec<(u16, &String)> = said
        .iter()
        .filter_map(|l| port_in_line(l).filter(|p| other(*p)).map(|p| (p, l)))
        .collect();
    let named = addrs.iter().find(|a| told.iter().any(|(p, _)| *p == a.port()));
    if let Some(a) = named.or(addrs.first()) {
        let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        let quote = told
            .iter()
            .rev()
            .find(|(p, _)| *p == a.port())
            .map(|(_, l)| format!(" (its output: {l:?})"))
            .unwrap_or_default();
        let host = match a.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        return Some((
            format!("it listens on {}{quote}", list.join(", ")),
            format!("http://{host}:{}/", a.port()),
        ));
    }
    let (p, l) = told.last()?;
    Some((format!("its output says {l:?}"), format!("http://127.0.0.1:{p}/")))
}

/// The port a line such as `listening on 3000`, `Server at http://localhost:3000/` or
/// `listening on 0.0.0.0:8080` names: its last number of 2 to 5 digits after a `:` or a
/// space, not part of an address (`127.0.0.1`).
pub(crate) fn port_in_line(line: &str) -> Option<u16> {
    let b = line.as_bytes();
    let mut found = None;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let before = start.checked_sub(1).map(|k| b[k]);
        let after = b.get(i).copied();
        let digits = i - start;
        if matches!(before, Some(b':' | b' ')) && !matches!(after, Some(b'.')) && (2..=5).contains(&digits) {
            found = line[start..i].parse::<u16>().ok().filter(|p| *p > 0).or(found);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suggested_url_keeps_the_path_polled() {
        assert_eq!(path_of("http://127.0.0.1:3000/api/orders?x=1"), "/api/orders?x=1");
        assert_eq!(path_of("http://127.0.0.1:3000"), "/");
        assert_eq!(path_of("http://127.0.0.1:3000?q"), "/?q");
        assert_eq!(path_of("http://localhost/"), "/");
    }

    #[test]
    fn ports_are_read_from_urls_and_listening_lines() {
        assert_eq!(port_of("http://127.0.0.1:46629/"), Some(46629));
        assert_eq!(port_of("ws://127.0.0.1:9229/abc-def"), Some(9229));
        assert_eq!(port_of("http://[::1]:8080/x?y=1"), Some(8080));
        assert_eq!(port_of("http://localhost/"), Some(80));
        for (line, port) in [
            ("no-leak listening on 3000", Some(3000)),
            ("Server listening at http://localhost:8080/api", Some(8080)),
            ("listening on 0.0.0.0:4000", Some(4000)),
            ("Listening on http://127.0.0.1:5173", Some(5173)),
            ("listening for messages", None),
            ("listening on 127.0.0.1", None),
        ] {
            assert_eq!(port_in_line(line), port, "{line}");
        }
    }

    #[test]
    fn an_app_listening_on_another_port_is_named_with_the_url_to_use() {
        let addrs = |list: &[&str]| list.iter().map(|a| a.parse().unwrap()).collect();
        let said = vec!["shop listening on http://localhost:3000".to_owned()];
        // The inspector's port is not the app's.
        let (evidence, url) = elsewhere(
            &addrs(&["127.0.0.1:9229", "0.0.0.0:3000"]),
            Some(9229),
            Some(46629),
            &said,
        )
        .expect("found");
        assert_eq!(
            evidence,
            "it listens on 0.0.0.0:3000 (its output: \"shop listening on http://localhost:3000\")"
        );
        assert_eq!(url, "http://127.0.0.1:3000/");
        // Its output alone, when /proc shows nothing.
        let (evidence, url) = elsewhere(&addrs(&[]), Some(9229), Some(46629), &said).expect("found");
        assert!(evidence.starts_with("its output says"), "{evidence}");
        assert_eq!(url, "http://127.0.0.1:3000/");
        // Listening on the URL's port (but slow to answer), or on no other port: nothing to say.
        assert_eq!(
            elsewhere(
                &addrs(&["127.0.0.1:46629", "0.0.0.0:3000"]),
                Some(9229),
                Some(46629),
                &said
            ),
            None
        );
        assert_eq!(
            elsewhere(&addrs(&["127.0.0.1:9229"]), Some(9229), Some(46629), &[]),
            None
        );
        let (_, url) = elsewhere(&addrs(&["[::1]:8080"]), None, Some(1), &[]).expect("found");
        assert_eq!(url, "http://[::1]:8080/");
    }
}
