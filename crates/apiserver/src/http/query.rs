//! Query parameters (`application/x-www-form-urlencoded`) and path segments, decoded.

/// Query parameters, decoded.
#[derive(Clone, Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a query string.
    pub(crate) fn parse(query: &str) -> Query {
        Query(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// A parameter's first value.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a boolean parameter is set (`true` or `1`).
    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// The segments of a path, percent-decoded (a `+` stays a `+` in a path).
pub(crate) fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_paths_decode_as_kube_apiserver_does() {
        let q = Query::parse("labelSelector=a%3Db%2Cc+in+(x)&watch=1&empty&dryRun=All&dryRun=x");
        assert_eq!(q.get("labelSelector"), Some("a=b,c in (x)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("empty"), Some(""));
        assert_eq!(q.get("dryRun"), Some("All"));
        assert_eq!(q.get("missing"), None);
        assert_eq!(
            segments("/api/v1/namespaces/a%2Bb/configmaps/x+y"),
            ["api", "v1", "namespaces", "a+b", "configmaps", "x+y"]
        );
    }
}
