//! Unit tests of composition's helpers.

use super::*;

#[test]
fn proxies_become_ent_proxy_servers_with_exceptions_and_a_pac_url() {
    let spec =
        |proxies: &[&str], no_proxy: &[&str], pac: Option<&str>| eve_model::NetworkConfigSpec {
            proxies: proxies.iter().map(|p| p.to_string()).collect(),
            no_proxy: no_proxy.iter().map(|p| p.to_string()).collect(),
            pac_url: pac.map(str::to_string),
            ..Default::default()
        };
    assert_eq!(
        ent_proxy(&spec(&[], &["x"], None)),
        None,
        "no proxy, no entProxy"
    );
    let proxy = ent_proxy(&spec(
        &[
            "https://10.100.100.1:8888",
            "http://proxy.example.com",
            "socks5://[fd00::1]:1081",
            "ftp://ftp-proxy:2121",
            "gopher://old:70",
        ],
        &["localhost", ".corp.example.com"],
        None,
    ))
    .unwrap();
    let servers: Vec<(i32, &str, u32)> = proxy
        .proxies
        .iter()
        .map(|p| (p.proto, p.server.as_str(), p.port))
        .collect();
    assert_eq!(
        servers,
        [
            (ProxyProto::ProxyHttps as i32, "10.100.100.1", 8888),
            (ProxyProto::ProxyHttp as i32, "proxy.example.com", 80),
            (ProxyProto::ProxySocks as i32, "fd00::1", 1081),
            (ProxyProto::ProxyFtp as i32, "ftp-proxy", 2121),
            (ProxyProto::ProxyOther as i32, "old", 70),
        ]
    );
    assert_eq!(proxy.exceptions, "localhost,.corp.example.com");
    assert!(!proxy.network_proxy_enable);
    let pac = ent_proxy(&spec(&[], &[], Some("http://wpad.corp/proxy.pac"))).unwrap();
    assert!(pac.network_proxy_enable);
    assert_eq!(pac.network_proxy_url, "http://wpad.corp/proxy.pac");
    assert!(pac.proxies.is_empty());
}

#[test]
fn command_words_are_quoted_as_a_shell_reads_them() {
    assert_eq!(shell_word("/app/run"), "/app/run");
    assert_eq!(shell_word("--port=8080"), "--port=8080");
    assert_eq!(shell_word("two words"), "'two words'");
    assert_eq!(shell_word("it's"), r"'it'\''s'");
    assert_eq!(shell_word(""), "''");
}
